"""Class ensembles: units that respond to a class far above the layer's average (docs/algorithms.md#ensembles)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ffterm_core.analysis._checks import as_ensembles, as_labels, as_matrix, check_num_classes, to_numpy

__all__ = ["class_means", "find_ensembles", "jaccard", "shared_units", "split_half_jaccard"]

SPLITS = 5  # random splits the split-half Jaccard is averaged over


def _check_factor(factor: Any) -> float:
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not math.isfinite(factor):
        raise ValueError(f"factor must be a finite real number, got {factor!r}")
    return float(factor)


def class_means(X: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class mean activation of every unit, for validated inputs.

    Returns ``(means, counts)``: ``means`` is (C, n) with NaN rows for classes
    that have no rows; ``counts`` is (C,) int, the number of rows per class.
    """
    M, n = X.shape
    counts = np.bincount(y, minlength=num_classes).astype(np.int64)
    onehot = np.zeros((M, num_classes), dtype=X.dtype)
    onehot[np.arange(M), y] = 1.0
    sums = onehot.T @ X  # (C, n), one BLAS call
    means = np.full((num_classes, n), np.nan, dtype=np.float64)
    present = counts > 0
    means[present] = sums[present] / counts[present, None]
    return means, counts


def _ensemble_mask(means: np.ndarray, factor: float) -> np.ndarray:
    """(C, n) bool: m_i - factor * LOO_i > 0, with LOO_i the mean of m_j over j != i.

    Evaluated without division, as ``m_i (n-1) > factor (sum_j m_j - m_i)``, so a
    unit exactly at ``factor`` times the leave-one-out mean is not included.
    NaN rows (classes without rows) give an all-False row.
    """
    n = means.shape[1]
    total = means.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        mask: np.ndarray = means * (n - 1) > factor * (total - means)
    return mask


def _mask_to_lists(mask: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(row).astype(np.int64) for row in mask]


def find_ensembles(X: Any, y: Any, num_classes: int, factor: float = 2.0) -> list[np.ndarray]:
    """Ensemble ``E_c`` of every class ``c``.

    For the rows of class ``c``, ``m_i`` is the mean activation of unit ``i`` and
    ``LOO_i`` the mean of ``m_j`` over all other units ``j != i``; unit ``i`` is
    in ``E_c`` iff ``m_i - factor * LOO_i > 0`` (strictly: a unit exactly at
    ``factor`` times the leave-one-out mean is *not* included).

    A class with no rows in ``X`` gets an empty ensemble (its means are
    undefined, so no unit can be shown to respond to it).  Whether ensembles are
    defined at all for a layer (sparsity >= 0.5) is decided by the caller, see
    :func:`ffterm_core.analysis.analyze_layer`.

    Parameters
    ----------
    X : (M, n) activations, n >= 2.
    y : (M,) integer labels in ``[0, num_classes)``.
    num_classes : number of classes C.
    factor : the multiple of the leave-one-out mean (2 in the paper's text, 3 in its
        published notebook; ``RunConfig.ensemble_factor``).

    Returns
    -------
    list of C int64 arrays of sorted unit indices.
    """
    C = check_num_classes(num_classes)
    factor = _check_factor(factor)
    X = as_matrix(X, "X", min_cols=2)
    y = as_labels(y, X.shape[0], C)
    means, _ = class_means(X, y, C)
    return _mask_to_lists(_ensemble_mask(means, factor))


def _membership(ensembles: Sequence[Any], n_units: int | None) -> np.ndarray:
    """(C, n_units) 0/1 membership matrix of validated ensembles."""
    if n_units is None:
        if not isinstance(ensembles, (Sequence, np.ndarray)):
            raise ValueError("ensembles must be a list with one array of unit indices per class")
        arrs = [to_numpy(e, f"ensembles[{c}]") for c, e in enumerate(ensembles)]
        sizes = [int(np.max(a)) for a in arrs if a.size and np.issubdtype(a.dtype, np.number)]
        n_units = 1 + max(sizes, default=-1)
    elif isinstance(n_units, bool) or not isinstance(n_units, numbers.Integral) or n_units < 0:
        raise ValueError(f"n_units must be a non-negative integer, got {n_units!r}")
    ens = as_ensembles(ensembles, int(n_units))
    B = np.zeros((len(ens), int(n_units)), dtype=np.int64)
    for c, e in enumerate(ens):  # loop over classes only
        B[c, e] = 1
    return B


def shared_units(ensembles: Sequence[Any], n_units: int | None = None) -> np.ndarray:
    """Matrix of shared units ``|E_c ∩ E_c'|``; the diagonal holds ``|E_c|``.

    Parameters
    ----------
    ensembles : one array of unit indices per class.
    n_units : layer width (optional; inferred from the largest index).

    Returns
    -------
    numpy.ndarray, (C, C) int64, symmetric.
    """
    B = _membership(ensembles, n_units)
    shared: np.ndarray = B @ B.T
    return shared


def jaccard(ensembles: Sequence[Any], n_units: int | None = None) -> np.ndarray:
    """Jaccard index ``|E_c ∩ E_c'| / |E_c ∪ E_c'|`` between every pair of ensembles.

    0 where both ensembles are empty (so an empty ensemble's diagonal entry is 0,
    a non-empty one's is 1).

    Returns
    -------
    numpy.ndarray, (C, C) float64, symmetric.
    """
    inter = shared_units(ensembles, n_units).astype(np.float64)
    size = np.diag(inter)
    union = size[:, None] + size[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def split_half_jaccard(
    X: Any, y: Any, num_classes: int, factor: float = 2.0, splits: int = SPLITS, seed: int = 0
) -> list[float | None]:
    """The noise floor of ensemble stability (docs/algorithms.md#ensemble-stability), per class.

    A class's rows are split at random into two halves (⌊m/2⌋ and the rest), its ensemble is found on
    each half by the rule of :func:`find_ensembles`, and the Jaccard index of the two (0 when both are
    empty) is averaged over ``splits`` splits: what the same evaluation gives twice by chance alone.
    None for a class with fewer than 2 rows. Whether the layer's ensembles are defined at all is
    the caller's question, as for :func:`find_ensembles`.
    """
    C = check_num_classes(num_classes)
    factor = _check_factor(factor)
    X = as_matrix(X, "X", min_cols=2)
    y = as_labels(y, X.shape[0], C)
    rng = np.random.default_rng(seed)
    out: list[float | None] = []
    for c in range(C):
        rows = np.flatnonzero(y == c)
        if rows.size < 2:
            out.append(None)
            continue
        total = 0.0
        for _ in range(splits):
            order = rng.permutation(rows)
            a, b = (
                _ensemble_mask(X[h].mean(axis=0, keepdims=True), factor)[0] for h in np.split(order, [rows.size // 2])
            )
            union = int((a | b).sum())
            total += int((a & b).sum()) / union if union else 0.0
        out.append(round(total / splits, 4))
    return out
