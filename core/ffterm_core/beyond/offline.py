"""Analyses of a saved run, from its checkpoint: full analysis, linear probes, run comparison."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ffterm_core.analysis import distance_correlation, linear_cka, linear_probe, svcca
from ffterm_core.config import RunConfig
from ffterm_core.data.prepare import prepare
from ffterm_core.device import resolve_device
from ffterm_core.records import SnapshotEvaluation
from ffterm_core.store import rundir
from ffterm_core.store.checkpoint import load_checkpoint
from ffterm_core.training.evaluate import evaluate, live_subset
from ffterm_core.training.trainers import Trainer, make_trainer


class OfflineError(ValueError):
    """An analysis of saved runs that cannot be done as asked; one line naming the fix."""


def load_config(run_dir: Path) -> RunConfig:
    return rundir.read_config(run_dir)


def load_trained(run_dir: Path, device: str | None = None, *, keep_heldout: bool = False) -> tuple[RunConfig, Trainer]:
    """The run's config and a trainer holding its checkpointed weights.

    keep_heldout: keep the held-out class's training images in `trainer.data` (for probes).
    """
    run_dir = Path(run_dir)
    cfg = load_config(run_dir)
    ckpt = load_checkpoint(run_dir / rundir.CHECKPOINT, cfg)
    if device is not None:
        cfg = cfg.replace(device=device)
    dev = resolve_device(cfg.device)
    data = prepare(cfg.replace(heldout_class=None) if keep_heldout else cfg, dev)
    trainer = make_trainer(cfg, data, dev)
    trainer.net.load_state_dict(ckpt["trainer"]["net"])
    return cfg, trainer


def analyze_run(
    run_dir: Path,
    samples: int | None = None,
    device: str | None = None,
    pvalues: bool = True,
    ensemble_factor: float | None = None,
    microstructure: bool = False,
) -> SnapshotEvaluation:
    """Recompute accuracy and the full per-layer analysis; writes RUN_DIR/analysis.json.

    ensemble_factor: the ensemble rule's multiple (default: the run's setting).
    microstructure: also each class's activation patterns per layer."""
    cfg, trainer = load_trained(run_dir, device)
    cfg = cfg.replace(final_pvalues=pvalues)
    if ensemble_factor is not None:
        cfg = cfg.replace(ensemble_factor=ensemble_factor)
    n_test = trainer.data.test_y.shape[0]
    subset = live_subset(n_test, samples, cfg.seed) if samples else None
    result = evaluate(trainer, cfg, subset, final=True, microstructure=microstructure)
    rundir.write_analysis(run_dir, result)
    return result


def probe_run(
    run_dir: Path, layer: int | None = None, device: str | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Linear probes on each layer's representations of plain images (no label pixel), docs/algorithms.md#linear-probes.

    The probe trains on every training image (a held-out class included: the probe asks whether the
    network's representation separates it) and is tested on the test images.
    """
    layers_in_run = load_config(run_dir).layers
    if layer is not None and not 1 <= layer <= layers_in_run:
        raise OfflineError(f"--layer {layer}: this run has layers 1..{layers_in_run}")
    cfg, trainer = load_trained(run_dir, device, keep_heldout=True)
    data = trainer.data
    layers = range(cfg.layers) if layer is None else [layer - 1]
    train_reps = trainer.representations(data.train_x, None)
    test_reps = trainer.representations(data.test_x, None)
    rows = []
    for i in layers:
        log(f"probing layer {i + 1}…")
        r = linear_probe(
            train_reps[i], data.train_y, test_reps[i], data.test_y, num_classes=10, heldout_class=cfg.heldout_class
        )
        rows.append({"layer": i + 1, **r})
    result = {"layers": rows}
    rundir.write_probes(run_dir, result)
    return result


def compare_runs(run_a: Path, run_b: Path, samples: int = 2000, device: str | None = None) -> dict[str, Any]:
    """Linear CKA, SVCCA and distance correlation between every layer pair of two runs."""
    dataset_a, dataset_b = load_config(run_a).dataset, load_config(run_b).dataset
    if dataset_a != dataset_b:
        raise OfflineError(
            f"cannot compare runs on different datasets ({dataset_a} vs {dataset_b}); "
            "representations must be of the same test images"
        )
    _, tr_a = load_trained(run_a, device)
    _, tr_b = load_trained(run_b, device)
    n = min(samples, tr_a.data.test_y.shape[0])
    reps = []
    for tr in (tr_a, tr_b):
        x, y = tr.data.test_x[:n], tr.data.test_y[:n]
        reps.append(tr.representations(x, y))
    pairs = []
    for i, ha in enumerate(reps[0]):
        for j, hb in enumerate(reps[1]):
            pairs.append(
                {
                    "layer_a": i + 1,
                    "layer_b": j + 1,
                    "cka": linear_cka(ha, hb),
                    "svcca": svcca(ha, hb),
                    "dcor": distance_correlation(ha, hb),
                }
            )
    return {"run_a": str(run_a), "run_b": str(run_b), "samples": n, "pairs": pairs}
