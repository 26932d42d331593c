"""Representation similarity: linear CKA, SVCCA and distance correlation (docs/algorithms.md#representation-similarity).

All three compare two representations of the *same* samples (row ``r`` of ``X``
and of ``Y`` come from the same input); the number of columns may differ.  They
are computed in float64 on the CPU.  When a representation has no variance
(every row identical) CKA and SVCCA are undefined and return ``nan``; distance
correlation returns 0 then (the convention of the ``dcor`` package).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ffterm_core.analysis._checks import as_matrix, to_numpy

__all__ = ["distance_correlation", "linear_cka", "svcca"]


def _pair(X: Any, Y: Any, *, allow_1d: bool = False) -> tuple[np.ndarray, np.ndarray]:
    if allow_1d:
        X = _as_2d(X, "X")
        Y = _as_2d(Y, "Y")
    X = as_matrix(X, "X", min_rows=2)
    Y = as_matrix(Y, "Y", min_rows=2)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must hold the same samples (same number of rows); got {X.shape[0]} and {Y.shape[0]}")
    return X, Y


def _as_2d(a: Any, name: str) -> Any:
    arr = to_numpy(a, name)
    return arr[:, None] if arr.ndim == 1 else arr


def linear_cka(X: Any, Y: Any) -> float:
    """Centered linear CKA between ``X`` (M, p) and ``Y`` (M, q).

    ``CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with column-centred
    ``Xc, Yc``.  Invariant to orthogonal transforms and isotropic scaling of
    either representation; 1 for ``CKA(X, X)``.  ``nan`` if either has no variance.
    """
    X, Y = _pair(X, Y)
    Xc = X - X.mean(axis=0)
    Yc = Y - Y.mean(axis=0)
    M, p = Xc.shape
    q = Yc.shape[1]
    if M * M * (p + q) < M * (p + q) ** 2:  # sample-space Gram matrices are cheaper
        K = Xc @ Xc.T
        L = Yc @ Yc.T
        hsic, nx, ny = float(np.vdot(K, L)), float(np.linalg.norm(K)), float(np.linalg.norm(L))
    else:
        Z = np.concatenate([Xc, Yc], axis=1)
        G = Z.T @ Z  # one symmetric product holds X^T X, Y^T Y and X^T Y
        hsic = float(np.sum(G[:p, p:] ** 2))
        nx, ny = float(np.linalg.norm(G[:p, :p])), float(np.linalg.norm(G[p:, p:]))
    if nx == 0.0 or ny == 0.0:
        return float("nan")
    return float(min(max(hsic / (nx * ny), 0.0), 1.0))


def _top_directions(Xc: np.ndarray, variance: float) -> np.ndarray | None:
    """Orthonormal (M, k) basis of the top singular directions explaining ``variance``.

    ``None`` if the matrix has no variance.
    """
    M, p = Xc.shape
    if p >= M:
        U, s, _ = np.linalg.svd(Xc, full_matrices=False)
        lam = s * s
    else:
        lam, V = np.linalg.eigh(Xc.T @ Xc)  # ascending; cheaper than an SVD of a tall matrix
        lam, V = lam[::-1].clip(min=0.0), V[:, ::-1]
        U = None
    total = float(lam.sum())
    if total <= 0.0:
        return None
    usable = int(np.count_nonzero(lam > lam[0] * max(M, p) * np.finfo(np.float64).eps))
    ratio = np.cumsum(lam) / total
    k = int(np.searchsorted(ratio, variance - 1e-12)) + 1
    k = max(1, min(k, usable))
    if U is not None:
        basis: np.ndarray = U[:, :k]
    else:
        basis = (Xc @ V[:, :k]) / np.sqrt(lam[:k])
    return basis


def svcca(X: Any, Y: Any, variance: float = 0.99) -> float:
    """SVCCA similarity between ``X`` (M, p) and ``Y`` (M, q).

    Each column-centred matrix is reduced by SVD to its top singular directions
    explaining ``variance`` of its total variance (the smallest such number of
    directions); the result is the mean canonical correlation between the two
    reduced representations, i.e. the mean of the ``min(kx, ky)`` singular
    values of ``Ux^T Uy`` for orthonormal bases ``Ux, Uy`` of the kept
    directions.  Invariant to invertible linear maps that preserve the kept
    subspace (e.g. ``svcca(X, X @ Q) == 1`` for orthogonal ``Q``).  With few
    samples (``M`` close to ``kx + ky``) canonical correlations are biased
    towards 1.  ``nan`` if either representation has no variance.
    """
    if isinstance(variance, bool) or not isinstance(variance, numbers.Real) or not 0 < variance <= 1:
        raise ValueError(f"variance must be in (0, 1], got {variance!r}")
    X, Y = _pair(X, Y)
    Ux = _top_directions(X - X.mean(axis=0), float(variance))
    Uy = _top_directions(Y - Y.mean(axis=0), float(variance))
    if Ux is None or Uy is None:
        return float("nan")
    rho = np.linalg.svd(Ux.T @ Uy, compute_uv=False)
    return float(np.clip(rho, 0.0, 1.0).mean())


def _centered_distances(Z: np.ndarray) -> np.ndarray:
    """Double-centred Euclidean distance matrix of the rows of ``Z``."""
    Z = Z - Z.mean(axis=0)  # distances are translation invariant; smaller norms, less cancellation
    sq = np.einsum("ij,ij->i", Z, Z)
    D = sq[:, None] + sq[None, :] - 2.0 * (Z @ Z.T)
    np.maximum(D, 0.0, out=D)
    np.sqrt(D, out=D)
    np.fill_diagonal(D, 0.0)
    row = D.mean(axis=1)
    D -= row[:, None]
    D -= row[None, :]
    D += row.mean()
    centred: np.ndarray = D
    return centred


def distance_correlation(X: Any, Y: Any, max_samples: int | None = 2000, seed: int = 0) -> float:
    """Sample distance correlation (V-statistic) between ``X`` (M, p) and ``Y`` (M, q).

    Same value as ``dcor.distance_correlation`` (the square root of
    ``dCov²(X, Y) / sqrt(dVar²(X) dVar²(Y))``); 0 when either has no variance.
    1-D inputs are treated as one column.

    Memory and time are O(M²): when ``M > max_samples`` a seeded random subset of
    ``max_samples`` rows (the same rows of ``X`` and ``Y``) is used
    (``max_samples=None`` uses all rows).
    """
    X, Y = _pair(X, Y, allow_1d=True)
    M = X.shape[0]
    if max_samples is not None:
        if isinstance(max_samples, bool) or not isinstance(max_samples, numbers.Integral) or max_samples < 2:
            raise ValueError(f"max_samples must be an integer >= 2 or None, got {max_samples!r}")
        if max_samples < M:
            rows = np.sort(np.random.default_rng(seed).choice(M, size=int(max_samples), replace=False))
            X, Y = X[rows], Y[rows]
    A = _centered_distances(X)
    B = _centered_distances(Y)
    dcov2 = float(np.vdot(A, B)) / A.size
    dvar = float(np.vdot(A, A)) * float(np.vdot(B, B)) / (A.size * A.size)
    if dvar <= 0.0:
        return 0.0
    return float(np.sqrt(max(dcov2 / np.sqrt(dvar), 0.0)))
