"""Excitation / inhibition balance of a layer's weights, and JSON-ready histograms."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ffterm_core.analysis._checks import as_matrix, as_vector, check_finite, to_numpy
from ffterm_core.records import Histogram

__all__ = ["histogram", "weight_balance"]


def weight_balance(W: Any, b: Any) -> dict[str, Any]:
    """Per-unit fraction of positive incoming weights and bias.

    Parameters
    ----------
    W : (n_out, n_in) weight matrix of a Linear layer (row ``i`` = incoming
        weights of unit ``i``, the ``torch.nn.Linear.weight`` layout).
    b : (n_out,) bias.

    Returns
    -------
    dict with
      ``rho_plus`` : (n_out,) float64 array, fraction of row ``i`` that is ``> 0``
      ``bias``     : (n_out,) float64 array, a copy of ``b``
      ``rho_plus_mean``, ``rho_plus_std``, ``bias_mean``, ``bias_std`` : floats
      (population standard deviation, ``ddof=0``).
    """
    W = as_matrix(W, "W", min_rows=1, min_cols=1)
    b = as_vector(b, "b", length=W.shape[0])
    rho = (W > 0).mean(axis=1)
    return {
        "rho_plus": rho,
        "bias": b.copy(),
        "rho_plus_mean": float(rho.mean()),
        "rho_plus_std": float(rho.std()),
        "bias_mean": float(b.mean()),
        "bias_std": float(b.std()),
    }


def histogram(values: Any, bins: int = 20, range: tuple[float, float] | None = None) -> Histogram:
    """Histogram as JSON-ready lists.

    Parameters
    ----------
    values : any-shaped array of finite numbers (flattened).
    bins : number of equal-width bins.
    range : ``(low, high)``; defaults to the data's min and max (numpy's rule:
        ``(0, 1)`` for no data, ``(v - 0.5, v + 0.5)`` for constant data).
        Use ``(0, 1)`` for ρ⁺.

    Returns
    -------
    ``{"counts": [int] * bins, "edges": [float] * (bins + 1)}``; values outside
    ``range`` are not counted, the last bin includes its right edge.
    """
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    arr = to_numpy(values, "values")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
        raise ValueError(f"values must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64).ravel()
    check_finite(arr, "values")
    if range is not None:
        lo, hi = (float(r) for r in range)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"range must be finite (low, high) with low < high, got {range!r}")
        range = (lo, hi)
    counts, edges = np.histogram(arr, bins=int(bins), range=range)
    return Histogram(counts=[int(c) for c in counts], edges=[float(e) for e in edges])
