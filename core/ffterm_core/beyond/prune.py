"""Pruning a trained network: remove units, measure test accuracy against the fraction of units kept.

See docs/algorithms.md, "Pruning". A removed unit's incoming weights and bias are set to zero, so its
output is exactly 0 for every input (ReLU(0) = 0): the same as a 0/1 mask on the layer's output. It
then contributes nothing downstream and nothing to its layer's goodness. Strategies (rankings in
:mod:`ffterm_core.beyond.prune_rank`):

- ``ensemble-balanced``: a class-balanced round-robin over the class ensembles, each class's units by
  their own margin ``m_ci − f·LOO_ci`` (f: the run's ensemble factor); units in no ensemble after.
- ``largest-margin``: ensemble units first, each by its largest margin over any class (formerly
  ``ensemble``; that name is still accepted).
- ``magnitude``: the ℓ2 norm of the unit's incoming weights; ``activity``: its mean activation.
- ``random``: seeded permutations; ``random-ensemble``: units drawn at random from the union of the
  ensembles (the control for "is it the ensembles, or which ensemble units").

Ensembles and activity come from a seeded sample of training images (ensembles: the correctly
classified ones), so the test images that measure accuracy do not pick the units. Targets: ``all``
(every layer to the same fraction), a single 1-based layer, ``each`` (every layer on its own), and
``global`` (one fraction of all units, ranked across layers). Every point records the network's
readout (FF, BP/FF: the summed vote over layers), each layer's own readout (its goodness argmax) and
per-class accuracy. The rankings are nested (a unit kept at 10 % is kept at 20 %). The run's files
are only read; results are written beside them by :func:`write_outputs`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ffterm_core.beyond import prune_rank as R
from ffterm_core.beyond.offline import OfflineError, load_config, load_trained
from ffterm_core.beyond.prune_eval import Kept, MaskedEvaluator, Predictions, class_accuracy
from ffterm_core.data.datasets import class_names
from ffterm_core.figures.beyond import prune_figure
from ffterm_core.figures.draw import save_figure
from ffterm_core.store import rundir
from ffterm_core.training.evaluate import live_subset
from ffterm_core.training.networks import BPNet, FFNet
from ffterm_core.training.trainers import Trainer, make_trainer

STRATEGIES = ("ensemble-balanced", "largest-margin", "magnitude", "activity", "random", "random-ensemble")
RENAMED = {"ensemble": "largest-margin"}  # old name → current name (old prune.json files keep the old one)
RANDOM = ("random", "random-ensemble")  # strategies measured over seeded draws
DEFAULT_KEEP = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
RANKING_SAMPLES = 10_000  # training images that rank units for the ensemble strategies and `activity`
WITHIN = 0.01  # "within 1 point" of the unpruned accuracy
ALL, GLOBAL, EACH = "all", "global", "each"
DEFAULT_TARGETS = (ALL, GLOBAL, EACH)

Target = int | str  # a 1-based layer, "all" (every layer to the same fraction) or "global"


@dataclass(frozen=True)
class PruneSpec:
    targets: tuple[Target, ...] = DEFAULT_TARGETS
    strategies: tuple[str, ...] = STRATEGIES
    keep: tuple[float, ...] = DEFAULT_KEEP
    finetune: int = 0  # epochs of retraining the kept units, per measured point
    draws: int = 3  # random strategies
    seed: int = 0
    samples: int | None = None  # test images to measure on (None: all)


@dataclass
class PruneProgress:
    done: int  # measurements made (a random point counts once per draw)
    total: int
    strategy: str
    entry: dict[str, Any] | None  # a finished point (with "strategy"), or None mid-point


ProgressFn = Callable[[PruneProgress], None]


def current_names(names: Iterable[str]) -> tuple[tuple[str, ...], list[str]]:
    """Names with renamed strategies replaced, and one note per rename used."""
    names = list(names)
    notes = [f"strategy {old!r} is now called {new!r}" for old, new in RENAMED.items() if old in names]
    return tuple(dict.fromkeys(RENAMED.get(n, n) for n in names)), notes


def check_spec(spec: PruneSpec, num_layers: int) -> None:
    """Raise OfflineError (one line) for a spec this run cannot be pruned with."""
    for name in spec.strategies:
        if name not in STRATEGIES:
            raise OfflineError(f"unknown pruning strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    if not spec.strategies:
        raise OfflineError(f"no pruning strategy given; choose from {', '.join(STRATEGIES)}")
    if not spec.keep:
        raise OfflineError("no keep fraction given; pass fractions in (0, 1], e.g. --keep 0.1,0.5,1")
    for f in spec.keep:
        if not (isinstance(f, (int, float)) and math.isfinite(f) and 0 < f <= 1):
            raise OfflineError(f"keep fraction {f!r} is outside (0, 1]; a fraction of units kept, e.g. 0.1")
    if not spec.targets:
        raise OfflineError("no target given; pass e.g. --layers all,global,each or 1-based layers")
    for t in spec.targets:
        if t not in (ALL, GLOBAL, EACH) and not (isinstance(t, int) and 1 <= t <= num_layers):
            raise OfflineError(
                f"layer {t!r} is out of range: this run has layers 1..{num_layers} (or 'all', 'global', 'each')"
            )
    if spec.draws < 1:
        raise OfflineError(f"--draws {spec.draws}: the random strategies need at least 1 draw")
    if spec.finetune < 0:
        raise OfflineError(f"--finetune {spec.finetune}: epochs of fine-tuning cannot be negative")
    if spec.samples is not None and spec.samples < 1:
        raise OfflineError(f"--samples {spec.samples}: measure on at least 1 test image")


def expand_targets(targets: Iterable[Target], num_layers: int) -> list[Target]:
    """'each' → every layer; duplicates dropped, order kept."""
    out: list[Target] = []
    for t in targets:
        out.extend(range(1, num_layers + 1) if t == EACH else [t])
    return list(dict.fromkeys(out))


# ---- rankings ---------------------------------------------------------------------------------------
class Rankings:
    """Each strategy's rankings per layer (0-based) and across layers (global ids), computed when first asked."""

    def __init__(self, trainer: Trainer, spec: PruneSpec) -> None:
        self.trainer, self.spec = trainer, spec
        self.num_layers, self.width = len(trainer.net.linears), _width(trainer)
        data = trainer.data
        self.reps: list[np.ndarray] = []
        self.margins: list[R.Margins] = []
        if set(spec.strategies) - {"magnitude", "random"}:
            idx = live_subset(data.train_y.shape[0], RANKING_SAMPLES, spec.seed).to(data.train_x.device)
            x_train, y_train = data.train_x[idx], data.train_y[idx]
            self.reps = [h.cpu().numpy() for h in trainer.representations(x_train, y_train)]
            y = y_train.cpu().numpy()
            correct = (trainer.evaluate(x_train, y_train).predictions == y_train).cpu().numpy()
            self.margins = [R.Margins.of(h[correct], y[correct], trainer.cfg.ensemble_factor) for h in self.reps]

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.spec.seed, *key])

    def layer(self, name: str, layer: int) -> list[np.ndarray]:
        """Rankings of one layer's units (one, or `draws` for the random strategies)."""
        draws = self.spec.draws
        if name == "ensemble-balanced":
            return [R.balanced_order(self.margins[layer])]
        if name == "largest-margin":
            return [R.largest_margin_order(self.margins[layer])]
        if name == "random":
            return R.random_orders(self.width, draws, self._rng(layer))
        if name == "random-ensemble":
            return R.random_within_orders(self.margins[layer].union, draws, self._rng(layer, 1))
        return [R.score_order(self._score(name, layer))]

    def across(self, name: str) -> list[np.ndarray]:
        """Rankings of every unit of every layer together (global ids layer · n + unit)."""
        draws, layers = self.spec.draws, range(self.num_layers)
        if name == "ensemble-balanced":
            return [R.balanced_order(R.Margins.joined(self.margins))]
        if name == "largest-margin":
            return [R.largest_margin_order(R.Margins.joined(self.margins))]
        if name == "random":
            return R.random_orders(self.width * self.num_layers, draws, self._rng(self.num_layers, 2))
        if name == "random-ensemble":
            union = np.concatenate([m.union for m in self.margins])
            return R.random_within_orders(union, draws, self._rng(self.num_layers, 3))
        return [R.score_order(np.concatenate([R.zscore(self._score(name, i)) for i in layers]))]

    def _score(self, name: str, layer: int) -> np.ndarray:
        if name == "magnitude":
            weight = self.trainer.net.linears[layer].weight.detach().cpu().numpy()
            norms: np.ndarray = np.linalg.norm(weight.astype(np.float64), axis=1)
            return norms
        activity: np.ndarray = self.reps[layer].astype(np.float64).mean(axis=0)
        return activity


def kept_units(rankings: Rankings, name: str, target: Target, fraction: float) -> list[Kept]:
    """Per ranking (draw): the kept units of every pruned layer."""
    n, layers = rankings.width, rankings.num_layers
    if target == GLOBAL:
        return [
            {i: torch.as_tensor(units) for i, units in enumerate(R.split_global(order, fraction, n, layers))}
            for order in rankings.across(name)
        ]
    pruned = range(layers) if target == ALL else [int(target) - 1]
    per_layer = {i: rankings.layer(name, i) for i in pruned}
    draws = len(next(iter(per_layer.values())))
    count = R.keep_count(fraction, n)
    return [{i: torch.as_tensor(np.sort(orders[d][:count])) for i, orders in per_layer.items()} for d in range(draws)]


# ---- measuring --------------------------------------------------------------------------------------
@torch.no_grad()
def apply_masks(net: FFNet | BPNet, masks: dict[int, torch.Tensor]) -> None:
    """Zero the incoming weights and bias of every removed unit (mask False) of the given layers (0-based)."""
    for layer, keep in masks.items():
        linear = net.linears[layer]
        linear.weight[~keep] = 0
        linear.bias[~keep] = 0


def masks_of(kept: Kept, width: int, device: torch.device) -> dict[int, torch.Tensor]:
    out = {}
    for layer, units in kept.items():
        mask = torch.zeros(width, dtype=torch.bool, device=device)
        mask[units.to(device)] = True
        out[layer] = mask
    return out


class _Measurer:
    """Predictions of the trained network with some units removed: from cached activations, or, with
    fine-tuning, from a copy retrained with the removed units held at zero."""

    def __init__(self, trainer: Trainer, spec: PruneSpec) -> None:
        self.trainer = trainer
        self.finetune = spec.finetune
        data = trainer.data
        self.x, self.y = data.test_x, data.test_y
        if spec.samples is not None:
            idx = live_subset(self.y.shape[0], spec.samples, spec.seed).to(self.x.device)
            self.x, self.y = self.x[idx], self.y[idx]
        self.cached = MaskedEvaluator(trainer, self.x)
        self.original = {k: v.clone() for k, v in trainer.net.state_dict().items()}

    def __call__(self, kept: Kept) -> Predictions:
        if not self.finetune:
            return self.cached(kept)
        net = self.trainer.net
        masks = masks_of(kept, _width(self.trainer), self.trainer.device)
        net.load_state_dict(self.original)
        apply_masks(net, masks)
        ev = self._finetuned(masks).evaluate(self.x, self.y)
        net.load_state_dict(self.original)
        layers = ev.layer_predictions
        return Predictions(ev.predictions.cpu().numpy(), None if layers is None else layers.cpu().numpy())

    def _finetuned(self, masks: dict[int, torch.Tensor]) -> Trainer:
        """A fresh trainer of the run's own kind, started from the pruned weights, masks kept after every step."""
        base = self.trainer
        tuner = make_trainer(base.cfg.replace(epochs=self.finetune), base.data, base.device)
        tuner.net.load_state_dict(base.net.state_dict())
        while not tuner.done:
            ended = tuner.step()
            apply_masks(tuner.net, masks)
            if ended:
                tuner.end_epoch()
        return tuner


def _width(trainer: Trainer) -> int:
    """Units per hidden layer (every hidden layer has the same width)."""
    return trainer.net.linears[0].out_features


def _units_kept(kept: Kept, width: int, layers: int) -> list[int]:
    return [int(kept[i].numel()) if i in kept else width for i in range(layers)]


def prune_run(
    run_dir: Path, spec: PruneSpec, device: str | None = None, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Measure accuracy against units kept for every (strategy, target, keep); see :func:`write_outputs`."""
    cfg = load_config(run_dir)
    num_layers = cfg.layers
    check_spec(spec, num_layers)
    targets = expand_targets(spec.targets, num_layers)
    cfg, trainer = load_trained(run_dir, device)
    measure = _Measurer(trainer, spec)
    y = measure.y.cpu().numpy()
    unpruned = measure({})
    rankings = Rankings(trainer, spec)
    keeps = sorted(set(spec.keep))
    width = _width(trainer)
    total = len(targets) * len(keeps) * sum(spec.draws if s in RANDOM else 1 for s in spec.strategies)
    done = 0
    strategies: dict[str, list[dict[str, Any]]] = {}
    for name in spec.strategies:
        entries = strategies[name] = []
        for target in targets:
            for fraction in keeps:
                results = []
                draws = kept_units(rankings, name, target, fraction)
                for kept in draws:
                    removed = any(units.numel() < width for units in kept.values())
                    results.append(measure(kept) if removed or spec.finetune else unpruned)
                    done += 1
                    if progress is not None and len(results) < len(draws):
                        progress(PruneProgress(done, total, name, None))
                entry = _entry(target, fraction, results, y, _units_kept(draws[0], width, num_layers))
                entries.append(entry)
                if progress is not None:
                    progress(PruneProgress(done, total, name, {"strategy": name, **entry}))
    baseline_layers = _layer_accuracy(unpruned, y)
    return {
        "baseline": _accuracy(unpruned.net, y),
        "strategies": strategies,
        "smallest_keep": smallest_keep(_accuracy(unpruned.net, y), strategies),
        "smallest_keep_own": smallest_keep_own(baseline_layers, strategies),
        "baseline_layer_accuracy": baseline_layers,
        "baseline_class_accuracy": class_accuracy(unpruned.net, y),
        "class_names": list(class_names(cfg.dataset)),
        "run": Path(run_dir).name,
        "dataset": cfg.dataset,
        "model": cfg.model,
        "layers": num_layers,
        "hidden": width,
        "targets": targets,
        "finetune_epochs": spec.finetune,
        "draws": spec.draws,
        "seed": spec.seed,
        "test_images": int(y.shape[0]),
    }


def _accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float((pred == y).mean())


def _layer_accuracy(p: Predictions, y: np.ndarray) -> list[float] | None:
    return None if p.layers is None else [_accuracy(p.layers[:, i], y) for i in range(p.layers.shape[1])]


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def mean_classes(rows: list[list[float | None]]) -> list[float | None]:
    """Per class, the mean over rows (None where a class has no value)."""
    out: list[float | None] = []
    for values in zip(*rows):
        present = [v for v in values if v is not None]
        out.append(float(np.mean(present)) if present else None)
    return out


def _entry(
    target: Target, fraction: float, results: list[Predictions], y: np.ndarray, units_kept: list[int]
) -> dict[str, Any]:
    """One point: the network's readout and each layer's own (random: mean over draws, std of the net's)."""
    accuracy, std = _mean_std([_accuracy(p.net, y) for p in results])
    layer_accs = [_layer_accuracy(p, y) for p in results]
    entry: dict[str, Any] = {
        "layer": target,
        "keep": fraction,
        "units_kept": units_kept,
        "accuracy": accuracy,
        "std": std,
        "layer_accuracy": None,
        "class_accuracy": mean_classes([class_accuracy(p.net, y) for p in results]),
    }
    if layer_accs[0] is not None:
        entry["layer_accuracy"] = [float(v) for v in np.mean(np.array(layer_accs, dtype=np.float64), axis=0)]
        if isinstance(target, int):
            own = [_accuracy(p.layers[:, target - 1], y) for p in results if p.layers is not None]
            entry["own_accuracy"], entry["own_std"] = _mean_std(own)
            entry["own_class_accuracy"] = mean_classes(
                [class_accuracy(p.layers[:, target - 1], y) for p in results if p.layers is not None]
            )
    return entry


def _smallest(points: list[tuple[float, float]], reference: float) -> float | None:
    """The smallest fraction from which on (it and every larger one) accuracy stays within 1 point of `reference`."""
    best = None
    for fraction, acc in sorted(points, reverse=True):
        if acc < reference - WITHIN:
            break
        best = fraction
    return best


def smallest_keep(baseline: float, strategies: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float | None]]:
    """Per strategy and target: the smallest measured fraction from which on (it and every larger one)
    the network's accuracy stays within 1 point of the unpruned network; None when even the largest does not."""
    return {
        name: {
            target: _smallest([(e["keep"], e["accuracy"]) for e in entries if str(e["layer"]) == target], baseline)
            for target in dict.fromkeys(str(e["layer"]) for e in entries)
        }
        for name, entries in strategies.items()
    }


def smallest_keep_own(
    baseline_layers: list[float] | None, strategies: dict[str, list[dict[str, Any]]]
) -> dict[str, dict[str, float | None]]:
    """The same for single-layer targets with the layer's own readout against its unpruned readout."""
    if not baseline_layers:
        return {}
    out: dict[str, dict[str, float | None]] = {}
    for name, entries in strategies.items():
        own = [e for e in entries if isinstance(e["layer"], int) and e.get("own_accuracy") is not None]
        out[name] = {
            str(layer): _smallest(
                [(e["keep"], e["own_accuracy"]) for e in own if e["layer"] == layer], baseline_layers[layer - 1]
            )
            for layer in dict.fromkeys(e["layer"] for e in own)
        }
    return out


# ---- output -----------------------------------------------------------------------------------------
def to_csv(result: dict[str, Any]) -> str:
    """One row per point: strategy, target, keep, accuracy and std of the network's readout, the target
    layer's own readout (single-layer targets), then per layer its units kept and its own accuracy, then
    per class the network's accuracy."""
    num_layers = int(result.get("layers") or len(result.get("baseline_layer_accuracy") or []) or 1)
    classes = len(result.get("baseline_class_accuracy") or [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["strategy", "layer", "keep", "accuracy", "std", "own_accuracy", "own_std"]
    header += [f"layer_{i + 1}_units" for i in range(num_layers)]
    header += [f"layer_{i + 1}_accuracy" for i in range(num_layers)]
    writer.writerow(header + [f"class_{c}_accuracy" for c in range(classes)])
    for name, entries in result["strategies"].items():
        for e in entries:
            units = e.get("units_kept") or [R.keep_count(e["keep"], result["hidden"])] * num_layers
            row = [name, e["layer"], e["keep"], e["accuracy"], e["std"], e.get("own_accuracy"), e.get("own_std")]
            row += list(units) + list(e.get("layer_accuracy") or [None] * num_layers)
            row += list(e.get("class_accuracy") or [None] * classes)
            writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


def write_outputs(run_dir: Path, result: dict[str, Any]) -> list[Path]:
    """prune.json, prune.csv, prune.png and prune.svg in the run directory."""
    run_dir = Path(run_dir)
    return [
        *rundir.write_prune(run_dir, result, to_csv(result)),
        *save_figure(prune_figure(result), run_dir, rundir.PRUNE_FIGURE),
    ]


def parse_targets(text: str) -> tuple[Target, ...]:
    """'all,global,1,3' → ('all', 'global', 1, 3); 'each' stays (every layer, expanded per run)."""
    out: list[Target] = []
    for part in (p.strip() for p in text.split(",")):
        if part in (ALL, GLOBAL, EACH):
            out.append(part)
        elif part.lstrip("-").isdigit():
            out.append(int(part))
        else:
            raise OfflineError(
                f"--layers {part!r}: give 1-based layers, 'all', 'global' or 'each', e.g. --layers all,global,1"
            )
    return tuple(dict.fromkeys(out))


def parse_fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise OfflineError(f"--keep {text!r}: give comma-separated fractions in (0, 1], e.g. 0.1,0.5,1") from None


def parse_names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
