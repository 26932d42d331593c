"""A layer's representations reduced to what :func:`~ffterm_core.analysis.analyze_layer` needs of them.

The reduction is one pass over the (M, n) matrix: the layer sparsity, the per-class means and
counts, the active units and the few rows the activation map shows. What remains is small
(C × n and about 8 rows a class), so on a GPU :func:`reduce_on_device` runs where the
representations live and only that crosses to the host, instead of the whole matrix.
:func:`reduce_on_host` is the same reduction of a validated numpy matrix (the CPU path, whose numbers
are the reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ffterm_core.analysis.ensembles import class_means
from ffterm_core.analysis.sparsity import _hoyer_rows, _layer_sparsity_from_rows, _lifetime_columns


@dataclass(frozen=True)
class ReducedLayer:
    n_rows: int  # M
    n_units: int  # n
    sparsity: float  # mean Hoyer sparsity of the non-zero rows (NaN when every row is zero)
    ignored_rows: int  # all-zero rows, left out of the sparsity
    means: np.ndarray  # (C, n) float64 class means, NaN rows for classes without rows
    counts: np.ndarray  # (C,) int64 rows per class
    active_units: int  # units with a non-zero activation in some row
    map_index: np.ndarray  # (R,) the rows the activation map shows: the first `rows_per_class` of each class
    map_rows: np.ndarray  # (R, n) float64 those rows
    map_labels: np.ndarray  # (R,) their classes
    lifetime: np.ndarray  # (n,) each unit's lifetime sparsity, NaN for units silent on every row


def _map_index(labels: np.ndarray, num_classes: int, rows_per_class: int) -> np.ndarray:
    """The first `rows_per_class` rows of each class in row order, class by class (as the map shows them)."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(num_classes + 1))
    picks = [order[bounds[c] : min(bounds[c] + rows_per_class, bounds[c + 1])] for c in range(num_classes)]
    return np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)


def reduce_on_host(X: np.ndarray, labels: np.ndarray, num_classes: int, rows_per_class: int) -> ReducedLayer:
    """The reduction of a validated float64 matrix and int64 labels, with the analysis' own numpy functions."""
    sparsity, ignored = _layer_sparsity_from_rows(_hoyer_rows(X))
    means, counts = class_means(X, labels, num_classes)
    index = _map_index(labels, num_classes, rows_per_class)
    return ReducedLayer(
        n_rows=X.shape[0],
        n_units=X.shape[1],
        sparsity=sparsity,
        ignored_rows=ignored,
        means=means,
        counts=counts,
        active_units=int(np.count_nonzero(np.abs(X).sum(axis=0) > 0)),
        map_index=index,
        map_rows=X[index],
        map_labels=labels[index],
        lifetime=_lifetime_columns(X),
    )


@torch.no_grad()
def reduce_on_device(X: torch.Tensor, y: torch.Tensor, num_classes: int, rows_per_class: int) -> ReducedLayer:
    """The same reduction computed in float64 on X's device; only its small results are copied to the host.

    X: (M ≥ 1, n ≥ 2) representations, y: (M,) labels in [0, num_classes), both on one device. The
    numbers equal :func:`reduce_on_host`'s up to float64 rounding (sums in another order).
    """
    M, n = X.shape
    if M < 1 or n < 2:
        raise ValueError(f"X needs at least 1 row and 2 columns; got shape {tuple(X.shape)}")
    x = X.detach().double()
    a = x.abs()
    peak = a.amax(dim=1)
    nz = peak > 0
    an = a[nz] / peak[nz, None]  # scaled by each row's largest entry, as the host path does
    sqrt_n = math.sqrt(n)
    hoyer = ((sqrt_n - an.sum(dim=1) / an.square().sum(dim=1).sqrt()) / (sqrt_n - 1.0)).clamp(0.0, 1.0)
    labels = y.detach().long()
    counts = torch.bincount(labels, minlength=num_classes)
    sums = torch.zeros(num_classes, n, dtype=torch.float64, device=x.device).index_add_(0, labels, x)
    means = sums / counts[:, None]  # NaN rows (0/0) for classes without rows, as on the host
    scalars = torch.stack(
        [torch.isfinite(x).all().double(), hoyer.mean(), nz.sum().double(), (a.sum(dim=0) > 0).sum().double()]
    ).cpu()  # one copy for the four numbers (an empty mean is NaN: every row zero)
    if not bool(scalars[0]):
        raise ValueError("X contains non-finite value(s) (NaN or inf)")
    host_labels = labels.cpu().numpy()
    index = _map_index(host_labels, num_classes, rows_per_class)
    return ReducedLayer(
        n_rows=M,
        n_units=n,
        sparsity=float(scalars[1]),
        ignored_rows=M - int(scalars[2]),
        means=means.cpu().numpy(),
        counts=counts.cpu().numpy().astype(np.int64),
        active_units=int(scalars[3]),
        map_index=index,
        map_rows=x[torch.from_numpy(index).to(x.device)].cpu().numpy(),
        map_labels=host_labels[index],
        lifetime=_lifetime_on_device(a).cpu().numpy(),
    )


def _lifetime_on_device(a: torch.Tensor) -> torch.Tensor:
    """`sparsity._lifetime_columns` of |X| (float64), on its device."""
    M, n = a.shape
    out = torch.full((n,), float("nan"), dtype=torch.float64, device=a.device)
    if M < 2:
        return out
    peak = a.amax(dim=0)
    nz = peak > 0
    an = a[:, nz] / peak[nz]
    activity = an.mean(dim=0).square() / an.square().sum(dim=0) * M
    out[nz] = ((1.0 - activity) / (1.0 - 1.0 / M)).clamp(0.0, 1.0)
    return out
