"""Pruning a trained network: remove units, measure test accuracy against the fraction of units kept.

See docs/algorithms.md, "Pruning". A removed unit's incoming weights and bias are set to zero, so its
output is exactly 0 for every input (ReLU(0) = 0): the same as a 0/1 mask on the layer's output. It
then contributes nothing downstream and nothing to its layer's goodness. Units are ranked per layer by
a strategy and the top ``round(keep · n)`` (at least one) are kept:

- ``ensemble``: units in any class ensemble first, then the rest; within each group by the margin
  ``max_c (m_ci − f·LOO_ci)`` of the ensemble rule (f: the run's ensemble factor, 2), largest first. Ensembles are taken from the
  correctly classified training images, so the test images that measure accuracy do not pick the units.
- ``magnitude``: the ℓ2 norm of the unit's incoming weights.
- ``activity``: the unit's mean activation on training images (FF, BP/FF: with their true label).
- ``random``: ``draws`` seeded permutations; accuracy is their mean ± std.

The rankings are nested (a unit kept at 10 % is kept at 20 %). The run's files are only read; results
are written beside them by :func:`write_outputs`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ffterm_core.analysis.ensembles import _ensemble_mask, class_means
from ffterm_core.beyond.offline import OfflineError, load_config, load_trained
from ffterm_core.data.embedding import NUM_LABELS
from ffterm_core.figures.beyond import prune_figure
from ffterm_core.figures.draw import save_figure
from ffterm_core.store import rundir
from ffterm_core.training.evaluate import live_subset
from ffterm_core.training.networks import BPNet, FFNet
from ffterm_core.training.trainers import Trainer, make_trainer

STRATEGIES = ("ensemble", "magnitude", "activity", "random")
DEFAULT_KEEP = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
RANKING_SAMPLES = 10_000  # training images that rank units for `ensemble` and `activity`
WITHIN = 0.01  # "within 1 point" of the unpruned accuracy
ALL = "all"

Target = int | str  # a 1-based layer, or "all" (every layer pruned to the same fraction)


@dataclass(frozen=True)
class PruneSpec:
    targets: tuple[Target, ...] = (ALL,)
    strategies: tuple[str, ...] = STRATEGIES
    keep: tuple[float, ...] = DEFAULT_KEEP
    finetune: int = 0  # epochs of retraining the kept units, per measured point
    draws: int = 5  # random strategy
    seed: int = 0
    samples: int | None = None  # test images to measure on (None: all)


@dataclass
class PruneProgress:
    done: int  # measurements made (a random point counts once per draw)
    total: int
    strategy: str
    entry: dict[str, Any] | None  # a finished point (with "strategy"), or None mid-point


ProgressFn = Callable[[PruneProgress], None]


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
    for t in spec.targets:
        if t != ALL and not (isinstance(t, int) and 1 <= t <= num_layers):
            raise OfflineError(f"layer {t!r} is out of range: this run has layers 1..{num_layers} (or 'all')")
    if spec.draws < 1:
        raise OfflineError(f"--draws {spec.draws}: the random strategy needs at least 1 draw")
    if spec.finetune < 0:
        raise OfflineError(f"--finetune {spec.finetune}: epochs of fine-tuning cannot be negative")
    if spec.samples is not None and spec.samples < 1:
        raise OfflineError(f"--samples {spec.samples}: measure on at least 1 test image")


# ---- rankings (most important unit first) ---------------------------------------------------------
def ensemble_order(X: np.ndarray, y: np.ndarray, num_classes: int = NUM_LABELS, factor: float = 2.0) -> np.ndarray:
    """Units by ensemble relevance: the union of the class ensembles first, each group by its best margin.

    The margin of unit i for class c is m_ci − factor·LOO_ci (LOO: the mean of the other units' means),
    positive exactly for ensemble members; a unit's relevance is its largest margin over the classes.
    """
    means, counts = class_means(np.asarray(X, dtype=np.float64), np.asarray(y), num_classes)
    means = means[counts > 0]
    n = means.shape[1]
    if means.shape[0] == 0:
        return np.arange(n)
    loo = (means.sum(axis=1, keepdims=True) - means) / (n - 1)
    margin = (means - factor * loo).max(axis=0)
    in_union = _ensemble_mask(means, factor).any(axis=0)
    return np.lexsort((np.arange(n), -margin, ~in_union))  # last key first: union, margin, index


def magnitude_order(W: np.ndarray) -> np.ndarray:
    """Units by the ℓ2 norm of their incoming weights (rows of W), largest first."""
    norms = np.linalg.norm(np.asarray(W, dtype=np.float64), axis=1)
    return np.lexsort((np.arange(norms.size), -norms))


def activity_order(X: np.ndarray) -> np.ndarray:
    """Units by mean activation, largest first."""
    mean = np.asarray(X, dtype=np.float64).mean(axis=0)
    return np.lexsort((np.arange(mean.size), -mean))


def random_orders(n: int, draws: int, seed: int, layer: int) -> list[np.ndarray]:
    """`draws` permutations of n units, reproducible from (seed, layer)."""
    rng = np.random.default_rng([seed, layer])
    return [rng.permutation(n) for _ in range(draws)]


def keep_count(fraction: float, n: int) -> int:
    """Units kept of n at a fraction: round half up, at least one."""
    return max(1, min(n, math.floor(fraction * n + 0.5)))


# ---- masks ------------------------------------------------------------------------------------------
def keep_mask(order: np.ndarray, fraction: float, device: torch.device) -> torch.Tensor:
    mask = torch.zeros(order.size, dtype=torch.bool, device=device)
    mask[torch.as_tensor(order[: keep_count(fraction, order.size)], device=device)] = True
    return mask


@torch.no_grad()
def apply_masks(net: FFNet | BPNet, masks: dict[int, torch.Tensor]) -> None:
    """Zero the incoming weights and bias of every removed unit (mask False) of the given layers (0-based)."""
    for layer, keep in masks.items():
        linear = net.linears[layer]
        linear.weight[~keep] = 0
        linear.bias[~keep] = 0


# ---- the sweep --------------------------------------------------------------------------------------
def _rankings(trainer: Trainer, spec: PruneSpec, layers: list[int]) -> dict[str, dict[int, list[np.ndarray]]]:
    """strategy → layer (0-based) → rankings (one, or `draws` for random)."""
    data = trainer.data
    need_reps = {"ensemble", "activity"} & set(spec.strategies)
    reps: list[np.ndarray] = []
    y = np.zeros(0, dtype=np.int64)
    correct = np.zeros(0, dtype=bool)
    if need_reps:
        idx = live_subset(data.train_y.shape[0], RANKING_SAMPLES, spec.seed).to(data.train_x.device)
        x_train, y_train = data.train_x[idx], data.train_y[idx]
        reps = [h.cpu().numpy() for h in trainer.representations(x_train, y_train)]
        y = y_train.cpu().numpy()
        if "ensemble" in spec.strategies:
            correct = (trainer.evaluate(x_train, y_train).predictions == y_train).cpu().numpy()
    out: dict[str, dict[int, list[np.ndarray]]] = {}
    for name in spec.strategies:
        per_layer = {}
        for layer in layers:
            if name == "ensemble":
                per_layer[layer] = [
                    ensemble_order(reps[layer][correct], y[correct], factor=trainer.cfg.ensemble_factor)
                ]
            elif name == "activity":
                per_layer[layer] = [activity_order(reps[layer])]
            elif name == "magnitude":
                per_layer[layer] = [magnitude_order(trainer.net.linears[layer].weight.detach().cpu().numpy())]
            else:
                per_layer[layer] = random_orders(_width(trainer), spec.draws, spec.seed, layer)
        out[name] = per_layer
    return out


class _Measurer:
    """Accuracy of the trained network with some units removed (optionally after fine-tuning)."""

    def __init__(self, trainer: Trainer, spec: PruneSpec) -> None:
        self.trainer = trainer
        self.finetune = spec.finetune
        self.original = {k: v.clone() for k, v in trainer.net.state_dict().items()}
        data = trainer.data
        self.x, self.y = data.test_x, data.test_y
        if spec.samples is not None:
            idx = live_subset(self.y.shape[0], spec.samples, spec.seed).to(self.x.device)
            self.x, self.y = self.x[idx], self.y[idx]

    def __call__(self, masks: dict[int, torch.Tensor]) -> tuple[float, list[float] | None]:
        net = self.trainer.net
        net.load_state_dict(self.original)
        apply_masks(net, masks)
        model = self._finetuned(masks) if self.finetune else self.trainer
        ev = model.evaluate(self.x, self.y)
        net.load_state_dict(self.original)
        return ev.accuracy, (ev.layer_accuracy or None)

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


def _targets_layers(target: Target, num_layers: int) -> list[int]:
    return list(range(num_layers)) if target == ALL else [int(target) - 1]


def prune_run(
    run_dir: Path, spec: PruneSpec, device: str | None = None, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Measure accuracy against units kept for every (target, strategy, keep); see :func:`write_outputs`."""
    num_layers = load_config(run_dir).layers
    check_spec(spec, num_layers)
    cfg, trainer = load_trained(run_dir, device)
    measure = _Measurer(trainer, spec)
    baseline, baseline_layers = measure({})
    layers = sorted({layer for t in spec.targets for layer in _targets_layers(t, num_layers)})
    rankings = _rankings(trainer, spec, layers)
    keeps = sorted(set(spec.keep))
    width = _width(trainer)
    total = len(spec.targets) * len(keeps) * sum(len(rankings[s][layers[0]]) for s in spec.strategies)
    done = 0
    strategies: dict[str, list[dict[str, Any]]] = {}
    for name in spec.strategies:
        entries = strategies[name] = []
        for target in spec.targets:
            target_layers = _targets_layers(target, num_layers)
            for fraction in keeps:
                orders = rankings[name]
                unpruned = None  # nothing removed: the baseline, unless fine-tuning changes it
                if keep_count(fraction, width) == width and not spec.finetune:
                    unpruned = (baseline, baseline_layers)
                results = []
                for measured in _measure_draws(measure, orders, target_layers, fraction, unpruned):
                    results.append(measured)
                    done += 1
                    if progress is not None and len(results) < len(orders[target_layers[0]]):
                        progress(PruneProgress(done, total, name, None))
                entry = _entry(target, fraction, results)
                entries.append(entry)
                if progress is not None:
                    progress(PruneProgress(done, total, name, {"strategy": name, **entry}))
    return {
        "baseline": baseline,
        "strategies": strategies,
        "smallest_keep": smallest_keep(baseline, strategies),
        "baseline_layer_accuracy": baseline_layers,
        "model": cfg.model,
        "hidden": width,
        "finetune_epochs": spec.finetune,
        "draws": spec.draws,
        "seed": spec.seed,
        "test_images": int(measure.y.shape[0]),
    }


def _measure_draws(
    measure: _Measurer,
    orders: dict[int, list[np.ndarray]],
    target_layers: list[int],
    fraction: float,
    unpruned: tuple[float, list[float] | None] | None,
) -> Iterator[tuple[float, list[float] | None]]:
    """(accuracy, per-layer accuracy) for each ranking of a strategy (several for random)."""
    for draw in range(len(orders[target_layers[0]])):
        if unpruned is not None:
            yield unpruned
            continue
        device = measure.trainer.device
        yield measure({layer: keep_mask(orders[layer][draw], fraction, device) for layer in target_layers})


def _entry(target: Target, fraction: float, results: list[tuple[float, list[float] | None]]) -> dict[str, Any]:
    accs = [acc for acc, _ in results]
    layer_accs = [per_layer for _, per_layer in results]
    mean = float(np.mean(accs))
    std = float(np.std(accs, ddof=1)) if len(accs) > 1 else None
    per_layer = None
    if layer_accs[0] is not None:
        per_layer = [float(v) for v in np.mean(np.array(layer_accs, dtype=np.float64), axis=0)]
    return {"layer": target, "keep": fraction, "accuracy": mean, "std": std, "layer_accuracy": per_layer}


def smallest_keep(baseline: float, strategies: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float | None]]:
    """Per strategy and target: the smallest measured fraction from which on (it and every larger one)
    accuracy stays within 1 point of the unpruned network; None when even the largest does not."""
    out: dict[str, dict[str, float | None]] = {}
    for name, entries in strategies.items():
        per_target: dict[str, float | None] = {}
        for target in dict.fromkeys(str(e["layer"]) for e in entries):
            points = sorted((e["keep"], e["accuracy"]) for e in entries if str(e["layer"]) == target)
            best = None
            for fraction, acc in reversed(points):
                if acc < baseline - WITHIN:
                    break
                best = fraction
            per_target[target] = best
        out[name] = per_target
    return out


# ---- output -----------------------------------------------------------------------------------------
def to_csv(result: dict[str, Any]) -> str:
    """One row per point: strategy, layer, keep, units kept, accuracy, std, then each layer's accuracy."""
    num_layers = len(result.get("baseline_layer_accuracy") or [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["strategy", "layer", "keep", "units_kept", "accuracy", "std"]
    writer.writerow(header + [f"layer_{i + 1}_accuracy" for i in range(num_layers)])
    for name, entries in result["strategies"].items():
        for e in entries:
            per_layer = e.get("layer_accuracy") or [None] * num_layers
            row = [name, e["layer"], e["keep"], keep_count(e["keep"], result["hidden"]), e["accuracy"], e["std"]]
            writer.writerow(["" if v is None else v for v in row + list(per_layer)])
    return buffer.getvalue()


def write_outputs(run_dir: Path, result: dict[str, Any]) -> list[Path]:
    """prune.json, prune.csv, prune.png and prune.svg in the run directory."""
    run_dir = Path(run_dir)
    return [
        *rundir.write_prune(run_dir, result, to_csv(result)),
        *save_figure(prune_figure(result), run_dir, rundir.PRUNE_FIGURE),
    ]


def parse_targets(text: str) -> tuple[Target, ...]:
    """'all,1,3' → ('all', 1, 3); a non-number other than 'all' is an OfflineError."""
    out: list[Target] = []
    for part in (p.strip() for p in text.split(",")):
        if part == ALL:
            out.append(ALL)
        elif part.lstrip("-").isdigit():
            out.append(int(part))
        else:
            raise OfflineError(f"--layers {part!r}: give 1-based layer numbers or 'all', e.g. --layers all,1,2")
    return tuple(dict.fromkeys(out))


def parse_fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise OfflineError(f"--keep {text!r}: give comma-separated fractions in (0, 1], e.g. 0.1,0.5,1") from None


def parse_names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
