"""Hoyer sparsity of representations (docs/algorithms.md#sparsity)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ffterm_core.analysis._checks import as_matrix

__all__ = ["hoyer_sparsity", "layer_sparsity", "lifetime_sparsity"]


def _hoyer_rows(X: np.ndarray) -> np.ndarray:
    """Hoyer sparsity of each row of a validated float matrix (NaN for all-zero rows)."""
    M, n = X.shape
    out = np.full(M, np.nan, dtype=np.float64)
    if M == 0:
        return out
    A = np.abs(X)
    peak = A.max(axis=1)
    nz = peak > 0
    if not nz.any():
        return out
    # Scale each row by its largest entry first: S is scale invariant, and this
    # keeps ||x||_2 from underflowing for tiny (but non-zero) rows.
    An = A[nz] / peak[nz, None]
    l1 = An.sum(axis=1)
    l2 = np.sqrt(np.einsum("ij,ij->i", An, An))
    sqrt_n = math.sqrt(n)
    s = (sqrt_n - l1 / l2) / (sqrt_n - 1.0)
    out[nz] = np.clip(s, 0.0, 1.0)  # clip only removes rounding outside [0, 1]
    return out


def hoyer_sparsity(X: Any) -> np.ndarray:
    """Hoyer sparsity of every row of ``X``.

    ``S(x) = (sqrt(n) - ||x||_1 / ||x||_2) / (sqrt(n) - 1)`` for a row ``x`` of
    length ``n``: 1 for a one-hot row, 0 for a constant row, invariant to
    rescaling the row.  All-zero rows have no defined sparsity and get ``NaN``.

    Parameters
    ----------
    X : array-like or torch.Tensor, shape (M, n)
        One representation per row; ``n`` must be at least 2.

    Returns
    -------
    numpy.ndarray, shape (M,), float64
    """
    X = as_matrix(X, "X", min_cols=2)
    return _hoyer_rows(X)


def _layer_sparsity_from_rows(s: np.ndarray) -> tuple[float, int]:
    valid = ~np.isnan(s)
    ignored = int(s.size - valid.sum())
    mean = float(s[valid].mean()) if valid.any() else float("nan")
    return mean, ignored


def layer_sparsity(X: Any) -> tuple[float, int]:
    """Layer sparsity: the mean Hoyer sparsity over the rows of ``X``.

    All-zero rows (undefined sparsity) are left out of the mean and counted.

    Returns
    -------
    (mean, n_ignored)
        ``mean`` is ``nan`` when every row is zero (or ``X`` has no rows);
        ``n_ignored`` is the number of all-zero rows.
    """
    return _layer_sparsity_from_rows(hoyer_sparsity(X))


def _lifetime_columns(X: np.ndarray) -> np.ndarray:
    """Lifetime sparsity of each column of a validated float matrix (NaN for all-zero columns)."""
    M, n = X.shape
    out = np.full(n, np.nan, dtype=np.float64)
    if M < 2:
        return out
    A = np.abs(X)
    peak = A.max(axis=0)
    nz = peak > 0
    An = A[:, nz] / peak[nz]  # scale invariant: rescaling keeps tiny columns from underflowing
    activity = An.mean(axis=0) ** 2 / np.einsum("ij,ij->j", An, An) * M  # (Σr/M)² / (Σr²/M)
    out[nz] = np.clip((1.0 - activity) / (1.0 - 1.0 / M), 0.0, 1.0)  # clip only removes rounding
    return out


def lifetime_sparsity(X: Any) -> np.ndarray:
    """Lifetime sparsity of every unit (column) of ``X``: how selectively it responds across the rows.

    For unit ``j`` with responses ``r_1 … r_M`` (absolute activations over the ``M`` rows), the
    Treves–Rolls activity ratio ``a_j = (Σ_i r_i / M)² / (Σ_i r_i² / M)`` lies in ``[1/M, 1]``; the
    lifetime sparsity (Willmore & Tolhurst 2001, in Vinje & Gallant's 2000 normalisation) is
    ``S_j = (1 - a_j) / (1 - 1/M)``: 0 for a unit that responds equally to every row, 1 for one that
    responds to a single row. Invariant to rescaling the unit. A unit silent on every row has no
    defined sparsity and gets ``NaN``, as does every unit when ``M < 2``.

    Hoyer's measure (:func:`hoyer_sparsity`) reads a row (one image, across units: population
    sparsity); this one reads a column (one unit, across images).

    Returns
    -------
    numpy.ndarray, shape (n,), float64
    """
    return _lifetime_columns(as_matrix(X, "X", min_cols=1))
