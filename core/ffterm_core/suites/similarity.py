"""Representation similarity between a suite's runs (Table 10, Fig. 13), computed once and cached.

Table 10 compares the same layer of two models, pairing their runs seed by seed (seed i of FF with
seed i of BP/FF, …) and averaging over the pairs. Fig. 13 compares every pair of layers within one
FF network, averaged over its seeds. Each comparison is cached in SUITE/similarity/ as JSON, so a
summary redone later costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ffterm_core.store import rundir

CACHE = "similarity"
SAMPLES = 2000  # test images compared (the study's notebooks use a subset too)


def _cache_name(a: dict[str, Any], b: dict[str, Any]) -> str:
    return f"{a['setting']}-seed{a['seed']}__{b['setting']}-seed{b['seed']}.json"


def comparison(suite_dir: Path, a: dict[str, Any], b: dict[str, Any], compute: bool) -> dict[str, Any] | None:
    """compare_runs(a, b) from the cache, computed (and cached) when `compute`; None if not available."""
    path = Path(suite_dir) / CACHE / _cache_name(a, b)
    if path.exists():
        try:
            cached: dict[str, Any] = json.loads(path.read_text())  # written by this module
            return cached
        except ValueError:
            path.unlink()
    if not compute:
        return None
    from ffterm_core.beyond.offline import compare_runs

    result = compare_runs(a["path"], b["path"], samples=SAMPLES)
    rundir.write_json(path, result)
    return result


def cross_model(
    suite_dir: Path,
    runs_a: list[dict[str, Any]],
    runs_b: list[dict[str, Any]],
    compute: bool,
    log: Callable[[str], None],
) -> dict[str, list[list[float]]]:
    """Per metric, per layer: the values of the seed-matched pairs of two models' runs (same layer)."""
    by_seed = {r["seed"]: r for r in runs_b}
    out: dict[str, list[list[float]]] = {"svcca": [], "cka": [], "dcor": []}
    for a in runs_a:
        b = by_seed.get(a["seed"])
        if b is None:
            continue
        if compute:
            log(f"similarity: {a['setting']} vs {b['setting']}, seed {a['seed']}")
        result = comparison(suite_dir, a, b, compute)
        if result is None:
            continue
        for p in result["pairs"]:
            if p["layer_a"] == p["layer_b"]:
                for metric in out:
                    layers = out[metric]
                    while len(layers) < p["layer_a"]:
                        layers.append([])
                    layers[p["layer_a"] - 1].append(p[metric])
    return out


def within_model(
    suite_dir: Path, runs: list[dict[str, Any]], compute: bool, log: Callable[[str], None], metric: str = "cka"
) -> list[list[list[float]]]:
    """values[i][j]: the metric between layers i+1 and j+1 of the same network, one value per run."""
    values: list[list[list[float]]] = []
    for r in runs:
        if compute:
            log(f"similarity: layers of {r['setting']} seed {r['seed']}")
        result = comparison(suite_dir, r, r, compute)
        if result is None:
            continue
        n = max(p["layer_a"] for p in result["pairs"])
        if not values:
            values = [[[] for _ in range(n)] for _ in range(n)]
        for p in result["pairs"]:
            if p["layer_a"] <= len(values) and p["layer_b"] <= len(values):
                values[p["layer_a"] - 1][p["layer_b"] - 1].append(p[metric])
    return values
