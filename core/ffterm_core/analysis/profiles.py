"""Activation profiles (per-class mean activation) and the activation-map display matrix."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ffterm_core.analysis._checks import as_ensembles, as_labels, as_matrix, check_num_classes
from ffterm_core.analysis.ensembles import class_means
from ffterm_core.records import ActivationMap

__all__ = ["activation_map", "activation_profiles"]


def activation_profiles(X: Any, y: Any, num_classes: int) -> np.ndarray:
    """Mean activation of every unit for every class (the bar plot of a class).

    Returns
    -------
    numpy.ndarray (C, n) float64; the row of a class with no samples is NaN.
    """
    C = check_num_classes(num_classes)
    X = as_matrix(X, "X")
    y = as_labels(y, X.shape[0], C)
    return class_means(X, y, C)[0]


def _pos_int(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _unit_groups(ensembles: list[np.ndarray] | None, n: int, C: int) -> np.ndarray:
    """Class under which each unit is displayed: the first class whose ensemble holds it, else -1."""
    group = np.full(n, -1, dtype=np.int64)
    if ensembles is not None:
        for c in range(C - 1, -1, -1):  # reversed, so the lowest class wins
            group[ensembles[c]] = c
    return group


def _activation_map(
    X: np.ndarray, y: np.ndarray, C: int, ensembles: list[np.ndarray] | None, rows_per_class: int, max_cols: int
) -> ActivationMap:
    _M, n = X.shape
    order = np.argsort(y, kind="stable")
    bounds = np.searchsorted(y[order], np.arange(C + 1))
    picks = [order[bounds[c] : min(bounds[c] + rows_per_class, bounds[c + 1])] for c in range(C)]
    rows = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    row_class = y[rows]

    group = _unit_groups(ensembles, n, C)
    # ensemble units first, grouped in class order (each class's units ascending), then the rest
    unit_order = np.lexsort((np.arange(n), np.where(group < 0, C, group)))
    K = min(n, max_cols)
    edges = (np.arange(K + 1) * n) // K
    widths = np.diff(edges)
    Xr = X[rows][:, unit_order]
    if rows.size:
        matrix = np.add.reduceat(Xr, edges[:-1], axis=1) / widths
    else:
        matrix = np.zeros((0, K))

    g = group[unit_order]
    col_of = np.repeat(np.arange(K), widths)
    tally = np.bincount(col_of * (C + 1) + (g + 1), minlength=K * (C + 1)).reshape(K, C + 1)
    best = np.argmax(tally[:, 1:], axis=1)
    best_count = tally[np.arange(K), best + 1]
    col_class = np.where((best_count > 0) & (best_count >= tally[:, 0]), best, -1)
    return ActivationMap(
        matrix=np.round(matrix, 4).tolist(),
        row_class=[int(c) for c in row_class],
        row_index=[int(r) for r in rows],
        unit_order=[int(u) for u in unit_order],
        col_edges=[int(e) for e in edges],
        col_class=[int(c) for c in col_class],
    )


def activation_map(
    X: Any,
    y: Any,
    num_classes: int,
    ensembles: Sequence[Any] | None,
    rows_per_class: int = 8,
    max_cols: int = 120,
) -> ActivationMap:
    """Display matrix of per-sample activations grouped by class, ensemble units first.

    Rows: the first ``rows_per_class`` samples of each class in data order
    (deterministic), classes in order 0..C-1 (fewer rows for rarer classes).
    Units: each class's ensemble units first, in class order (a unit in several
    ensembles is shown under the first of those classes), then all other units;
    ascending index within each group.  The reordered units are split into
    ``K = min(n, max_cols)`` contiguous, near-equal column bins and averaged.

    Parameters
    ----------
    ensembles : one array per class, or None when ensembles are undefined
        (then units keep their natural order and every column is -1).

    Returns
    -------
    dict, JSON-ready:
      ``matrix``     (R, K) list of lists, mean activation per bin, 4 decimals
      ``row_class``  class of each row;  ``row_index``: its row in ``X``
      ``unit_order`` the unit shown at each position (length n)
      ``col_edges``  bin ``j`` covers ``unit_order[col_edges[j]:col_edges[j+1]]``
      ``col_class``  for each column, the class whose ensemble units are the
                     most common group in the bin (ties go to the ensemble class,
                     then the lower class), or -1 if non-ensemble units
                     outnumber them.
    """
    C = check_num_classes(num_classes)
    rows_per_class = _pos_int(rows_per_class, "rows_per_class")
    max_cols = _pos_int(max_cols, "max_cols")
    X = as_matrix(X, "X")
    y = as_labels(y, X.shape[0], C)
    ens = None if ensembles is None else as_ensembles(ensembles, X.shape[1], C)
    return _activation_map(X, y, C, ens, rows_per_class, max_cols)
