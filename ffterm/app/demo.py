"""Synthetic snapshots and a stand-in session, for developing and testing the app without torch.

`demo_snapshots()` makes a deterministic, plausible-looking run (losses fall, accuracy rises,
layers grow sparser and their ensembles shrink). `DemoSession` has the shape of ffterm_core.training.session.Session
and plays such a run from a thread, writing snapshots.jsonl into its run directory, so every part
of the app (watch, export, pause, stop, failure) can be exercised in tests in a fraction of a second.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ffterm_core.config import MODEL_KINDS, RunConfig, dump_yaml
from ffterm_core.records import SPARSITY_CUTOFF, Heldout, LayerAnalysis
from ffterm_core.store import rundir
from ffterm_core.store.snapshot import Snapshot

N_CLASSES = 10


def _hist(values: list[float], lo: float, hi: float, bins: int = 20) -> dict[str, list[Any]]:
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        k = min(bins - 1, max(0, int((v - lo) / width)))
        counts[k] += 1
    return {"counts": counts, "edges": [round(lo + i * width, 6) for i in range(bins + 1)]}


def _stat(values: list[float], lo: float, hi: float) -> dict[str, Any]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {"mean": round(mean, 6), "std": round(std, 6), "hist": _hist(values, lo, hi)}


def _hoyer(row: list[float]) -> float | None:
    n = len(row)
    l1 = sum(abs(v) for v in row)
    l2 = math.sqrt(sum(v * v for v in row))
    if l2 == 0:
        return None
    return (math.sqrt(n) - l1 / l2) / (math.sqrt(n) - 1)


def _lifetime(matrix: list[list[float]], col: int) -> float | None:
    """Treves–Rolls lifetime sparsity of one column (ffterm_core.analysis.sparsity.lifetime_sparsity)."""
    r = [abs(row[col]) for row in matrix]
    m, sq = sum(r) / len(r), sum(v * v for v in r) / len(r)
    return (1 - m * m / sq) / (1 - 1 / len(r)) if sq else None


def demo_layer(
    rng: random.Random, progress: float, layer: int, n_units: int, rows_per_class: int = 4, final: bool = False
) -> dict[str, Any]:
    """One per-layer analysis dict (see ffterm_core.analysis.analyze_layer) at training progress 0..1."""
    frac = max(0.04, 0.45 * (1 - progress) + 0.06 + 0.02 * layer)  # ensemble fraction shrinks
    ensembles: list[list[int]] = []
    class_mean: list[list[float]] = []
    for c in range(N_CLASSES):
        k = max(1, int(frac * n_units))
        start = (c * n_units // N_CLASSES + layer * 3) % n_units
        members = sorted({(start + i * 2 + rng.randrange(2)) % n_units for i in range(k)})
        ensembles.append(members)
        mset = set(members)
        class_mean.append(
            [
                round(rng.uniform(0.8, 2.0) if i in mset else rng.uniform(0, 0.12 * (1 - progress) + 0.01), 4)
                for i in range(n_units)
            ]
        )
    unit_order = [u for c in range(N_CLASSES) for u in ensembles[c]]
    unit_order = list(dict.fromkeys(unit_order))  # first place of each unit
    seen = set(unit_order)
    unit_order += [u for u in range(n_units) if u not in seen]
    col_class = []
    for u in unit_order:
        owner = next((c for c in range(N_CLASSES) if u in ensembles[c]), -1)
        col_class.append(owner)
    matrix, row_class = [], []
    for c in range(N_CLASSES):
        for _ in range(rows_per_class):
            matrix.append([round(max(0.0, class_mean[c][u] + rng.gauss(0, 0.15)), 3) for u in unit_order])
            row_class.append(c)
    sparsities = [s for s in (_hoyer(r) for r in matrix) if s is not None]
    sparsity = sum(sparsities) / len(sparsities)
    defined = sparsity >= SPARSITY_CUTOFF
    shared = [[len(set(a) & set(b)) for b in ensembles] for a in ensembles]
    jac = [[round(len(set(a) & set(b)) / max(1, len(set(a) | set(b))), 4) for b in ensembles] for a in ensembles]
    rho = [min(1.0, max(0.0, rng.gauss(0.5 - 0.15 * progress, 0.06))) for _ in range(n_units)]
    bias = [rng.gauss(-0.3 * progress, 0.2) for _ in range(n_units)]
    active = sum(1 for u in range(n_units) if any(class_mean[c][u] > 0.5 for c in range(N_CLASSES)))
    return {
        "sparsity": round(sparsity, 4),
        "sparsity_ignored_rows": 0,
        "ensembles": ensembles if defined else None,
        "ensemble_size_pct": round(100 * sum(len(e) for e in ensembles) / (N_CLASSES * n_units), 3)
        if defined
        else None,
        "shared_units": shared if defined else None,
        "jaccard": jac if defined else None,
        "n_units_p_gt_0_05": (layer + 1) if final and defined else None,
        "rho_plus": _stat(rho, 0.0, 1.0),
        "bias": _stat(bias, -1.5, 1.0),
        "class_mean_activation": class_mean,
        "activation_map": {"matrix": matrix, "row_class": row_class, "unit_order": unit_order, "col_class": col_class},
        "active_units": active,
        "lifetime_sparsity": _stat([v for u in range(n_units) if (v := _lifetime(matrix, u)) is not None], 0.0, 1.0),
    }


def demo_heldout_layer(layer: dict[str, Any], k: int) -> dict[str, Any]:
    """The held-out class's entry for one layer, shaped as ffterm_core.analysis.analyze_heldout_layer's."""
    ensembles = layer["ensembles"]
    if ensembles is None:
        return {
            "sparsity": round(layer["sparsity"] - 0.05, 4),
            "ensemble": None,
            "shared_with_seen": None,
            "shared_with_seen_total": None,
        }
    ek = set(ensembles[k])
    seen = set().union(*(set(e) for c, e in enumerate(ensembles) if c != k))
    return {
        "sparsity": round(layer["sparsity"] - 0.05, 4),
        "ensemble": ensembles[k],
        "shared_with_seen": [None if c == k else len(ek & set(e)) for c, e in enumerate(ensembles)],
        "shared_with_seen_total": len(ek & seen),
    }


def demo_snapshots(
    epochs_per_stage: int = 6,
    layers: int = 3,
    model: str = "ff",
    n_units: int = 40,
    eval_every: int = 2,
    seed: int = 0,
    run_name: str = "demo-ff-synthetic",
    dataset: str = "synthetic",
    heldout_class: int | None = None,
) -> list[Snapshot]:
    """A deterministic synthetic run: one snapshot per epoch, evaluated every `eval_every` and at the end."""
    rng = random.Random(seed)
    stages = layers if MODEL_KINDS[model].layerwise else 1
    total = epochs_per_stage * stages
    out = []
    for epoch in range(1, total + 1):
        out.append(
            demo_snapshot(
                rng,
                epoch,
                total,
                layers,
                model,
                n_units,
                epochs_per_stage,
                evaluated=(epoch % eval_every == 0 or epoch == total),
                run_name=run_name,
                dataset=dataset,
                heldout_class=heldout_class,
            )
        )
    last = out[-1]
    last.state = "finished"
    last.kind = "final"
    return out


def demo_snapshot(
    rng: random.Random,
    epoch: int,
    total: int,
    layers: int = 3,
    model: str = "ff",
    n_units: int = 40,
    epochs_per_stage: int | None = None,
    evaluated: bool = True,
    run_name: str = "demo-ff-synthetic",
    dataset: str = "synthetic",
    heldout_class: int | None = None,
) -> Snapshot:
    epochs_per_stage = epochs_per_stage or total
    progress = epoch / total
    stage = (epoch - 1) // epochs_per_stage if MODEL_KINDS[model].layerwise else 0
    n_loss = layers if MODEL_KINDS[model].goodness else 1
    loss: list[float | None] = []
    g_pos: list[float | None] = []
    g_neg: list[float | None] = []
    for layer in range(n_loss):
        trained = not MODEL_KINDS[model].layerwise or layer == stage
        local = ((epoch - 1) % epochs_per_stage + 1) / epochs_per_stage if MODEL_KINDS[model].layerwise else progress
        if trained:
            loss.append(round(0.7 * math.exp(-2.5 * local) + 0.05 + 0.05 * layer + rng.uniform(0, 0.02), 5))
            if MODEL_KINDS[model].goodness:
                g_pos.append(round(3 + 4 * local + rng.uniform(0, 0.2), 4))
                g_neg.append(round(3 - 2.2 * local + rng.uniform(0, 0.2), 4))
        else:
            loss.append(None)
            if MODEL_KINDS[model].goodness:
                g_pos.append(None)
                g_neg.append(None)
    acc: float | None = None
    layer_acc: list[float] | None = None
    analysis: list[dict[str, Any]] | None = None
    heldout: dict[str, Any] | None = None
    if evaluated:
        acc = round(0.55 + 0.33 * (1 - math.exp(-4 * progress)), 4)
        layer_acc = [round(acc - 0.02 * (layers - 1 - i), 4) for i in range(layers)]
        analysis = [demo_layer(rng, progress, i, n_units) for i in range(layers)]
        if heldout_class is not None:
            heldout = {
                "class": heldout_class,
                "accuracy_seen": round(acc + 0.01, 4),
                "accuracy_heldout": round(0.1 + 0.3 * progress, 4),
                "layers": [demo_heldout_layer(a, heldout_class) for a in analysis],
            }
    return Snapshot(
        run_name=run_name,
        model=model,
        dataset=dataset,
        device="cpu",
        num_layers=layers,
        kind="live",
        state="running",
        stage=stage,
        stage_epoch=(epoch - 1) % epochs_per_stage + 1,
        epochs_per_stage=epochs_per_stage,
        epoch=epoch,
        total_epochs=total,
        wall_time=round(1.5 * epoch, 3),
        samples_per_s=12000.0 + 100 * (epoch % 3),
        eta_s=round(1.5 * (total - epoch), 3),
        loss=loss,
        g_pos=g_pos,
        g_neg=g_neg,
        test_accuracy=acc,
        layer_accuracy=layer_acc,
        eval_samples=200 if evaluated else None,
        # the demo fills the keys the views read, a subset of the analysis' records
        layers=cast("list[LayerAnalysis] | None", analysis),
        heldout=cast("Heldout | None", heldout),
    )


class DemoSession:
    """Plays a synthetic run from a thread, with the interface of ffterm_core.training.session.Session.

    `interval` seconds between snapshots; `fail_at`: epoch at which the run fails (as a missing
    dataset or NaN loss would), ending with state "failed", `error` set and a failed Snapshot.
    """

    def __init__(
        self,
        cfg: Any = None,
        run_dir: Path | None = None,
        *,
        force: bool = False,
        interval: float = 0.05,
        fail_at: int | None = None,
        n_units: int = 40,
    ) -> None:
        self.config = cfg
        model = getattr(cfg, "model", "ff")
        layers = getattr(cfg, "layers", 3)
        epochs = getattr(cfg, "epochs", 4)
        self.run_dir = Path(run_dir) if run_dir is not None else Path("runs") / "demo"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._model, self._layers, self._epochs = model, layers, epochs
        self._stages = (
            layers if MODEL_KINDS[model].layerwise and getattr(cfg, "schedule", "sequential") == "sequential" else 1
        )
        self._name = getattr(cfg, "name", "demo")
        self._dataset = getattr(cfg, "dataset", "synthetic")
        self._heldout = getattr(cfg, "heldout_class", None)
        self.interval, self.fail_at, self.n_units = interval, fail_at, n_units
        self.state = "starting"
        self.error: str | None = None
        self.checkpoints = 0
        self._subscribers: list[Callable[[Snapshot], None]] = []
        self._run = threading.Event()
        self._run.set()
        self._stop = threading.Event()
        self._snap_now = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo-session", daemon=True)
        # the real settings when there are some: readers bound the snapshot lines by them
        text = dump_yaml(cfg) if isinstance(cfg, RunConfig) else json.dumps({"name": self._name, "model": model}) + "\n"
        rundir.atomic_write_text(self.run_dir / rundir.CONFIG, text)

    @classmethod
    def resume_from(cls, run_dir: Path) -> DemoSession:
        return cls(None, run_dir)

    def subscribe(self, fn: Callable[[Snapshot], None]) -> None:
        self._subscribers.append(fn)

    def start(self) -> None:
        self.state = "running"
        self._thread.start()

    def pause(self) -> None:
        if self.state == "running":
            self._run.clear()
            self.state = "paused"

    def resume(self) -> None:
        if self.state == "paused":
            self.state = "running"
            self._run.set()

    def stop(self) -> None:
        if self.state in ("running", "paused", "starting"):
            self.state = "stopping"
        self._stop.set()
        self._run.set()

    def request_checkpoint(self) -> None:
        self.checkpoints += 1

    def request_snapshot(self) -> None:
        self._snap_now.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _emit(self, snap: Snapshot) -> None:
        rundir.append_snapshot(self.run_dir, snap)
        for fn in self._subscribers:
            fn(snap)

    def _loop(self) -> None:
        rng = random.Random(0)
        total = self._epochs * self._stages
        snap = None
        for epoch in range(1, total + 1):
            self._run.wait()
            if self._stop.is_set():
                break
            if self.fail_at is not None and epoch >= self.fail_at:
                self.error = f"loss became NaN at epoch {epoch}; lower lr"
                self.state = "failed"
                failed = Snapshot(
                    run_name=self._name,
                    model=self._model,
                    dataset=self._dataset,
                    device="cpu",
                    num_layers=self._layers,
                    kind="state",
                    state="failed",
                    epoch=epoch - 1,
                    total_epochs=total,
                    message=self.error,
                )
                self._emit(failed)
                return
            time.sleep(self.interval)
            evaluated = epoch % 2 == 0 or epoch == total or self._snap_now.is_set()
            self._snap_now.clear()
            snap = demo_snapshot(
                rng,
                epoch,
                total,
                self._layers,
                self._model,
                self.n_units,
                self._epochs if self._stages > 1 else total,
                evaluated,
                run_name=self._name,
                dataset=self._dataset,
                heldout_class=self._heldout,
            )
            snap.state = "paused" if not self._run.is_set() else "running"
            if epoch == total:
                snap.kind, snap.state = "final", "finished"
            self._emit(snap)
        if self._stop.is_set():
            self.state = "stopped"
            self._emit(
                Snapshot(
                    run_name=self._name,
                    model=self._model,
                    dataset=self._dataset,
                    device="cpu",
                    num_layers=self._layers,
                    kind="state",
                    state="stopped",
                    epoch=snap.epoch if snap else 0,
                    total_epochs=total,
                    message="stopped by the user",
                )
            )
        else:
            self.state = "finished"


class DemoPresetInfo:
    def __init__(self, name: str, description: str, path: Path | None = None) -> None:
        self.name, self.description, self.path = name, description, path


class DemoPresets:
    """A stand-in for ffterm_core.store.presets (same functions), with a few synthetic-data presets."""

    DEFAULT_PRESET = "quick-ff-fashionmnist"

    class PresetError(ValueError):
        pass

    _PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
        "quick-ff-fashionmnist": ("FF, 3 layers, quick CPU run", {"model": "ff"}),
        "quick-bpff-fashionmnist": ("BP/FF, 3 layers, quick CPU run", {"model": "bpff", "schedule": "simultaneous"}),
        "quick-bp-fashionmnist": ("BP, 3 layers, quick CPU run", {"model": "bp"}),
        "heldout-ff-mnist": ("FF with digit 3 held out", {"model": "ff", "heldout_class": 3, "dataset": "mnist"}),
        "l1-ff-fashionmnist": ("FF with l1 goodness", {"model": "ff", "goodness": "l1"}),
    }

    def list_presets(self) -> list[DemoPresetInfo]:
        return [DemoPresetInfo(n, d) for n, (d, _) in self._PRESETS.items()]

    def load_preset(self, name_or_path: str, overrides: dict[str, Any] | None = None) -> Any:
        from ffterm_core.config import from_dict

        if name_or_path not in self._PRESETS:
            raise self.PresetError(f"unknown preset {name_or_path!r}; choose one of {', '.join(self._PRESETS)}")
        desc, values = self._PRESETS[name_or_path]
        base: dict[str, Any] = {
            "name": name_or_path,
            "description": desc,
            "dataset": "fashionmnist",
            "epochs": 4,
            **values,
        }
        return from_dict({**base, **(overrides or {})})
