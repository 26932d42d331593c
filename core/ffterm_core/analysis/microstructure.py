"""Microstructure of a class's representation: one activation pattern, or several? (docs/algorithms.md,
"Ensemble microstructure").

For one layer and one class, the rows are the activation patterns of that class's correctly
classified images. All-zero rows have no direction and are left out (counted in ``zero_rows``). Each
row is scaled to unit ℓ2 norm and clustered by Ward's hierarchical clustering (deterministic; on unit
vectors the squared Euclidean distance is twice the cosine distance). For k = 2 … ``kmax`` the tree is
cut into k clusters; a cut is admissible when every cluster holds at least
``max(min_size, min_fraction · rows)`` rows. Among admissible cuts the one with the highest mean
silhouette (on cosine distance) is kept if that silhouette is at least ``silhouette_floor`` (0.25, the
usual lower bound of a "weak" structure); otherwise the class has one pattern (k = 1).

Each pattern gets its own ensemble by the class-ensemble rule (leave-one-out with ``factor``, the run's ensemble factor) applied to
the pattern's rows, and its Jaccard overlap with the class ensemble. Patterns are listed largest
first; the dominant pattern is the largest one (index 0; ties keep the tree's order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from ffterm_core.analysis._checks import as_labels, as_matrix, check_num_classes
from ffterm_core.analysis.ensembles import _ensemble_mask

__all__ = ["ClassPatterns", "Pattern", "class_patterns", "find_patterns", "microstructure", "silhouette"]

KMAX = 6
MIN_SIZE = 10
MIN_FRACTION = 0.05
SILHOUETTE_FLOOR = 0.25
MAX_ROWS = 2000  # larger classes: cluster a seeded subsample, then assign every row to its nearest pattern


@dataclass
class Pattern:
    members: np.ndarray  # row indices (into the X given)
    ensemble: list[int] | None  # None when the layer's ensembles are undefined
    jaccard_with_class: float | None


@dataclass
class ClassPatterns:
    cls: int
    patterns: list[Pattern]
    silhouette: float | None  # of the chosen split; None for one pattern
    zero_rows: int

    @property
    def dominant(self) -> int | None:
        return 0 if self.patterns else None

    def to_json(self) -> dict[str, Any]:
        return {
            "class": self.cls,
            "patterns": [
                {"size": int(p.members.size), "ensemble": p.ensemble, "jaccard_with_class": p.jaccard_with_class}
                for p in self.patterns
            ],
            "dominant": self.dominant,
            "silhouette": self.silhouette,
            "zero_rows": self.zero_rows,
        }


def silhouette(D: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of a clustering given a square distance matrix (a singleton's value is 0)."""
    ids, labels = np.unique(labels, return_inverse=True)
    onehot = np.zeros((labels.size, ids.size))
    onehot[np.arange(labels.size), labels] = 1.0
    sizes = onehot.sum(axis=0)
    sums = D @ onehot  # (M, k): summed distance of each row to each cluster
    own = sizes[labels]
    a = np.where(own > 1, sums[np.arange(labels.size), labels] / np.maximum(own - 1, 1), 0.0)
    other = sums / sizes
    other[np.arange(labels.size), labels] = np.inf
    b = other.min(axis=1)
    denom = np.maximum(a, b)
    s = np.where((own > 1) & (denom > 0), (b - a) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(s.mean())


def _unit_rows(X: np.ndarray) -> np.ndarray:
    unit: np.ndarray = X / np.linalg.norm(X, axis=1, keepdims=True)  # numpy types ndarray[Any] / ndarray as Any
    return unit


def _best_split(
    U: np.ndarray, kmax: int, min_size: int, min_fraction: float, floor: float
) -> tuple[np.ndarray, float | None]:
    """Cluster labels (0..k-1) of unit rows U by the stated criterion, and the chosen silhouette."""
    m = U.shape[0]
    smallest = max(min_size, int(np.ceil(min_fraction * m)))
    one = np.zeros(m, dtype=np.int64)
    if m < 2 * smallest:
        return one, None
    tree = linkage(U, method="ward")
    D = np.clip(1.0 - U @ U.T, 0.0, 2.0)  # cosine distance
    best: np.ndarray = one  # fcluster's labels are int32, the fallback int64
    best_score: float | None = None
    for k in range(2, kmax + 1):
        labels = fcluster(tree, t=k, criterion="maxclust") - 1
        counts = np.bincount(labels)
        if counts.size < k or counts.min() < smallest:
            continue
        score = silhouette(D, labels)
        if score >= floor and (best_score is None or score > best_score):
            best, best_score = labels, score
    return best, best_score


def _jaccard(a: list[int], b: list[int]) -> float:
    sa, sb = set(a), set(b)
    union = len(sa | sb)
    return len(sa & sb) / union if union else 0.0


def class_patterns(
    X: Any,
    class_ensemble: list[int] | None,
    *,
    factor: float = 2.0,
    kmax: int = KMAX,
    min_size: int = MIN_SIZE,
    min_fraction: float = MIN_FRACTION,
    silhouette_floor: float = SILHOUETTE_FLOOR,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
    cls: int = 0,
) -> ClassPatterns:
    """The patterns of one class's rows X (M, n); ``class_ensemble`` None means ensembles are undefined."""
    X = as_matrix(X, "X", min_cols=2)
    nonzero = np.flatnonzero(np.abs(X).sum(axis=1) > 0)
    if nonzero.size == 0:
        return ClassPatterns(cls, [], None, int(X.shape[0]))
    U = _unit_rows(X[nonzero])
    if U.shape[0] > max_rows:
        sample = np.sort(np.random.default_rng(seed).choice(U.shape[0], max_rows, replace=False))
        sample_labels, score = _best_split(U[sample], kmax, min_size, min_fraction, silhouette_floor)
        k = sample_labels.max() + 1
        centroids = _unit_rows(np.stack([U[sample][sample_labels == j].mean(axis=0) for j in range(k)]))
        labels = (U @ centroids.T).argmax(axis=1)
    else:
        labels, score = _best_split(U, kmax, min_size, min_fraction, silhouette_floor)
    groups = [nonzero[labels == j] for j in range(labels.max() + 1)]
    groups = sorted((g for g in groups if g.size), key=lambda g: -g.size)  # stable: ties keep the tree's order
    patterns = []
    for rows in groups:
        ensemble = jac = None
        if class_ensemble is not None:
            mean = X[rows].mean(axis=0, keepdims=True)
            ensemble = np.flatnonzero(_ensemble_mask(mean, factor)[0]).tolist()
            jac = _jaccard(ensemble, list(class_ensemble))
        patterns.append(Pattern(rows, ensemble, jac))
    return ClassPatterns(cls, patterns, score if len(patterns) > 1 else None, int(X.shape[0] - nonzero.size))


def find_patterns(
    X: Any, y: Any, num_classes: int, ensembles: Sequence[Sequence[int] | None] | None, **options: Any
) -> list[ClassPatterns]:
    """:func:`class_patterns` of every class (member indices refer to rows of X)."""
    C = check_num_classes(num_classes)
    Xn = as_matrix(X, "X", min_cols=2)
    labels = as_labels(y, Xn.shape[0], C)
    out = []
    for c in range(C):
        rows = np.flatnonzero(labels == c)
        ens_c = None if ensembles is None else ensembles[c]
        found = class_patterns(Xn[rows], None if ens_c is None else list(ens_c), cls=c, **options)
        for p in found.patterns:
            p.members = rows[p.members]
        out.append(found)
    return out


def microstructure(
    X: Any, y: Any, num_classes: int, ensembles: Sequence[Sequence[int] | None] | None, **options: Any
) -> list[dict[str, Any]]:
    """JSON-ready: one entry per class, ``{"class", "patterns": [{"size", "ensemble", "jaccard_with_class"}],
    "dominant", "silhouette", "zero_rows"}``."""
    return [p.to_json() for p in find_patterns(X, y, num_classes, ensembles, **options)]
