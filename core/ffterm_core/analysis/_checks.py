"""Input conversion and validation shared by the analysis functions.

Every public function of :mod:`ffterm_core.analysis` accepts numpy arrays, torch tensors
(any device; they are copied to host memory unless the function says it runs on
the tensor's device) or nested sequences.  Bad input raises :class:`ValueError`
with one message naming the argument and the problem; nothing is silently
coerced into a wrong number.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

try:  # torch is a hard dependency of ffterm, but keep numpy-only use possible
    import torch
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None  # type: ignore[assignment]

__all__ = [
    "as_ensembles",
    "as_labels",
    "as_matrix",
    "as_vector",
    "check_finite",
    "check_num_classes",
    "is_tensor",
    "to_numpy",
]


def is_tensor(a: Any) -> bool:
    """True when ``a`` is a torch tensor."""
    return torch is not None and isinstance(a, torch.Tensor)


def to_numpy(a: Any, name: str) -> np.ndarray:
    """Convert ``a`` (numpy array, torch tensor on any device, or sequence) to numpy."""
    if is_tensor(a):
        t = a.detach()
        if t.is_complex():
            raise ValueError(f"{name} must be real-valued, got a complex tensor")
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        arr: np.ndarray = t.cpu().numpy()
        return arr
    try:
        return np.asarray(a)
    except Exception as exc:  # ragged lists etc.
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise ValueError if ``arr`` holds NaN or +-inf, naming the first offender."""
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)
        first = tuple(int(i) for i in bad[0])
        where = first[0] if len(first) == 1 else first
        raise ValueError(f"{name} contains {len(bad)} non-finite value(s) (NaN or inf); first at index {where}")


def _check_numeric(arr: np.ndarray, name: str) -> None:
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real-valued, got dtype {arr.dtype}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")


def as_matrix(
    X: Any,
    name: str = "X",
    *,
    min_rows: int = 0,
    min_cols: int = 1,
    dtype: Any = np.float64,
) -> np.ndarray:
    """Return ``X`` as a finite 2-D float array of shape (rows, columns)."""
    arr = to_numpy(X, name)
    _check_numeric(arr, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, units); got shape {tuple(arr.shape)}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} row(s); got shape {tuple(arr.shape)}")
    if arr.shape[1] < min_cols:
        raise ValueError(f"{name} needs at least {min_cols} column(s); got shape {tuple(arr.shape)}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    check_finite(arr, name)
    return arr


def as_vector(v: Any, name: str, *, length: int | None = None, dtype: Any = np.float64) -> np.ndarray:
    """Return ``v`` as a finite 1-D float array (optionally of a given length)."""
    arr = to_numpy(v, name)
    _check_numeric(arr, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {tuple(arr.shape)}")
    if length is not None and arr.shape[0] != length:
        raise ValueError(f"{name} has length {arr.shape[0]}, expected {length}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    check_finite(arr, name)
    return arr


def check_num_classes(num_classes: Any) -> int:
    """Validate ``num_classes`` (a positive integer) and return it as ``int``."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes}")
    return int(num_classes)


def _as_int64(arr: np.ndarray, name: str, what: str) -> np.ndarray:
    """``arr`` as int64; a float array must hold finite whole numbers (an empty one is fine)."""
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        if arr.size:
            raise ValueError(f"{name} must hold integer {what}, got dtype {arr.dtype}")
    elif not np.issubdtype(arr.dtype, np.integer):
        check_finite(arr, name)
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer {what}; found non-integer values")
    return arr.astype(np.int64)


def as_labels(y: Any, n_rows: int, num_classes: int, name: str = "y") -> np.ndarray:
    """Return integer class labels of length ``n_rows``, each in ``[0, num_classes)``."""
    arr = to_numpy(y, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per row); got shape {tuple(arr.shape)}")
    if arr.shape[0] != n_rows:
        raise ValueError(f"{name} has {arr.shape[0]} labels but the data has {n_rows} rows")
    labels = _as_int64(arr, name, "class labels")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{name} labels must lie in [0, {num_classes}) for num_classes={num_classes}; "
            f"found values from {int(labels.min())} to {int(labels.max())}"
        )
    return labels


def as_ensembles(
    ensembles: Any, n_units: int, num_classes: int | None = None, name: str = "ensembles"
) -> list[np.ndarray]:
    """Validate a per-class list of unit-index arrays (sorted, unique, in ``[0, n_units)``)."""
    not_a_list = isinstance(ensembles, (str, bytes)) or not isinstance(ensembles, (Sequence, np.ndarray))
    if ensembles is None or (not_a_list and not is_tensor(ensembles)):
        raise ValueError(f"{name} must be a list with one array of unit indices per class")
    out: list[np.ndarray] = []
    for c, e in enumerate(ensembles):
        arr = to_numpy(e, f"{name}[{c}]")
        if arr.ndim != 1:
            raise ValueError(f"{name}[{c}] must be a 1-D array of unit indices; got shape {arr.shape}")
        idx = _as_int64(arr, f"{name}[{c}]", "unit indices")
        if idx.size and (idx.min() < 0 or idx.max() >= n_units):
            raise ValueError(f"{name}[{c}] has unit indices outside [0, {n_units}): {int(idx.min())}..{int(idx.max())}")
        if np.unique(idx).size != idx.size:
            raise ValueError(f"{name}[{c}] contains repeated unit indices")
        out.append(idx)
    if num_classes is not None and len(out) != num_classes:
        raise ValueError(f"{name} has {len(out)} entries, expected one per class ({num_classes})")
    return out
