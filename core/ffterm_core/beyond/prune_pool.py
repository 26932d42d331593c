"""Pruning results of several runs (seeds) pooled: mean ± std over runs per strategy, target and fraction.

Each run's point is already the mean over its random draws, so a random strategy's spread here is
the spread between seeds, not between draws. The pooled result has the layout of one run's, so the
same table, CSV and figure read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ffterm_core.beyond.offline import OfflineError, load_config
from ffterm_core.beyond.prune import PruneSpec, check_spec, mean_classes, smallest_keep, smallest_keep_own
from ffterm_core.config import RunConfig
from ffterm_core.store import rundir
from ffterm_core.store.checkpoint import CheckpointError

SAME = ("dataset", "model", "layers", "hidden")  # what runs pooled together must share


def check_runs(run_dirs: list[Path], spec: PruneSpec) -> None:
    """Before any measuring: every directory is a run with a checkpoint that `spec` fits, and the runs can be pooled."""
    configs = {Path(d): load_config(Path(d)) for d in run_dirs}
    for run_dir, cfg in configs.items():
        check_spec(spec, cfg.layers)
        if not (run_dir / rundir.CHECKPOINT).exists():
            raise CheckpointError(
                f"{run_dir / rundir.CHECKPOINT}: no checkpoint here; was the run started with ffterm?"
            )
    if len(set(configs)) < len(run_dirs):
        raise OfflineError("a run directory is given twice; pool each run once")
    check_poolable(configs)


def check_poolable(configs: dict[Path, RunConfig]) -> None:
    """Raise OfflineError (one line) when the runs differ in what makes their points comparable."""
    items = list(configs.items())
    first_dir, first = items[0]
    for run_dir, cfg in items[1:]:
        for key in SAME:
            a, b = getattr(first, key), getattr(cfg, key)
            if a != b:
                raise OfflineError(
                    f"cannot pool {first_dir} and {run_dir}: {key} {a} vs {b}; pool runs of one preset (seeds) only"
                )


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def _pooled_entry(entries: list[dict[str, Any]]) -> dict[str, Any]:
    first = entries[0]
    accuracy, std = _mean_std([e["accuracy"] for e in entries])
    out: dict[str, Any] = {
        "layer": first["layer"],
        "keep": first["keep"],
        "units_kept": [float(v) for v in np.mean([e["units_kept"] for e in entries], axis=0)],
        "accuracy": accuracy,
        "std": std,
        "layer_accuracy": None,
        "class_accuracy": mean_classes([e["class_accuracy"] for e in entries]),
    }
    if first.get("layer_accuracy") is not None:
        out["layer_accuracy"] = [float(v) for v in np.mean([e["layer_accuracy"] for e in entries], axis=0)]
    if first.get("own_accuracy") is not None:
        out["own_accuracy"], out["own_std"] = _mean_std([e["own_accuracy"] for e in entries])
        out["own_class_accuracy"] = mean_classes([e["own_class_accuracy"] for e in entries])
    return out


def pool(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs' points pooled; std is over runs (None for a single run)."""
    first = results[0]
    strategies: dict[str, list[dict[str, Any]]] = {}
    for name, entries in first["strategies"].items():
        strategies[name] = []
        for entry in entries:
            key = (str(entry["layer"]), entry["keep"])
            same = [e for r in results for e in r["strategies"].get(name, []) if (str(e["layer"]), e["keep"]) == key]
            strategies[name].append(_pooled_entry(same))
    baseline, baseline_std = _mean_std([r["baseline"] for r in results])
    layers = None
    if first.get("baseline_layer_accuracy") is not None:
        layers = [float(v) for v in np.mean([r["baseline_layer_accuracy"] for r in results], axis=0)]
    return {
        **{k: v for k, v in first.items() if k not in ("run", "seed")},
        "baseline": baseline,
        "baseline_std": baseline_std,
        "baseline_layer_accuracy": layers,
        "baseline_class_accuracy": mean_classes([r["baseline_class_accuracy"] for r in results]),
        "strategies": strategies,
        "smallest_keep": smallest_keep(baseline, strategies),
        "smallest_keep_own": smallest_keep_own(layers, strategies),
        "runs": [r["run"] for r in results],
    }
