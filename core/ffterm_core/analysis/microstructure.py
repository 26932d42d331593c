"""Microstructure of a class's representation: one activation pattern, or several? (docs/algorithms.md,
"Ensemble microstructure").

For one layer and one class, the rows are the activation patterns of that class's correctly
classified images. All-zero rows have no direction and are left out (counted in ``zero_rows``). Each
row is scaled to unit ℓ2 norm and clustered by Ward's hierarchical clustering (deterministic). For
k = 2 … ``kmax`` the tree is cut into k clusters; a cut is admissible when every cluster holds at least
``max(min_size, min_fraction · rows)`` rows. Among admissible cuts the one with the highest mean
silhouette is kept if that silhouette is at least ``silhouette_floor`` (0.25, the usual lower bound of
a "weak" structure); otherwise the class has one pattern (k = 1). The silhouette is taken on the
Euclidean distance between the unit rows (the space Ward clusters in), not on the cosine distance
(half the squared Euclidean distance there), which inflates it.

Each pattern gets its own ensemble by the class-ensemble rule (leave-one-out with ``factor``, the run's
ensemble factor) applied to the pattern's rows, and its Jaccard overlap with the class ensemble. Its
members (test image indices when ``images`` maps the rows to them) are listed nearest to the pattern's
mean direction first, so the first ones are its exemplars. Patterns are listed largest first; the
dominant pattern is the largest one (index 0; ties keep the tree's order).

Stability: the clustering is repeated on ``resamples`` random subsamples of 80 % of the rows, and the
adjusted Rand index between each and the full clustering (on the rows they share) is averaged
(1: the same partition every time, about 0: no better than chance); with it the fraction of
subsamples that find the same number of patterns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from ffterm_core.analysis._checks import as_labels, as_matrix, check_num_classes
from ffterm_core.analysis.ensembles import _ensemble_mask

__all__ = [
    "ClassPatterns",
    "Pattern",
    "adjusted_rand",
    "class_patterns",
    "find_patterns",
    "microstructure",
    "silhouette",
]

KMAX = 6
MIN_SIZE = 10
MIN_FRACTION = 0.05
SILHOUETTE_FLOOR = 0.25
SILHOUETTE_METRIC = "euclidean"  # between unit-length rows
RESAMPLES = 5
RESAMPLE_FRACTION = 0.8
MAX_ROWS = 2000  # larger classes: cluster a seeded subsample, then assign every row to its nearest pattern


@dataclass
class Pattern:
    members: np.ndarray  # row indices (into the X given; test image indices once mapped), most typical first
    ensemble: list[int] | None  # None when the layer's ensembles are undefined
    jaccard_with_class: float | None


@dataclass
class ClassPatterns:
    cls: int
    patterns: list[Pattern]
    silhouette: float | None  # of the chosen split; None for one pattern
    zero_rows: int
    stability: float | None = None  # mean adjusted Rand index over subsamples; None when not resampled
    same_k: float | None = None  # fraction of subsamples with as many patterns

    @property
    def dominant(self) -> int | None:
        return 0 if self.patterns else None

    def to_json(self) -> dict[str, Any]:
        return {
            "class": self.cls,
            "patterns": [
                {
                    "size": int(p.members.size),
                    "members": p.members.tolist(),
                    "ensemble": p.ensemble,
                    "jaccard_with_class": p.jaccard_with_class,
                }
                for p in self.patterns
            ],
            "dominant": self.dominant,
            "silhouette": self.silhouette,
            "silhouette_metric": SILHOUETTE_METRIC,
            "stability_ari": self.stability,
            "stability_same_k": self.same_k,
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


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labellings of the same rows (Hubert & Arabie); 1 when both put every
    row in one cluster (or both in its own), where the index is 0/0."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max(initial=0) + 1, bi.max(initial=0) + 1))
    np.add.at(table, (ai, bi), 1.0)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    total = pairs(np.array([float(a.size)]))
    index, sa, sb = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = sa * sb / total if total else 0.0
    top = (sa + sb) / 2
    return 1.0 if top == expected else (index - expected) / (top - expected)


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
    D = np.sqrt(np.clip(2.0 - 2.0 * (U @ U.T), 0.0, 4.0))  # Euclidean distance between unit rows
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


def _cluster(U: np.ndarray, options: dict[str, Any], max_rows: int, seed: int) -> tuple[np.ndarray, float | None]:
    """Labels of every unit row, and the chosen silhouette; larger sets: a seeded subsample is clustered and
    every row goes to its nearest pattern."""
    if U.shape[0] <= max_rows:
        return _best_split(U, **options)
    sample = np.sort(np.random.default_rng(seed).choice(U.shape[0], max_rows, replace=False))
    sample_labels, score = _best_split(U[sample], **options)
    k = sample_labels.max() + 1
    centroids = _unit_rows(np.stack([U[sample][sample_labels == j].mean(axis=0) for j in range(k)]))
    labels: np.ndarray = (U @ centroids.T).argmax(axis=1)
    return labels, score


def _resampled(
    U: np.ndarray, labels: np.ndarray, options: dict[str, Any], max_rows: int, resamples: int, seed: int
) -> tuple[float | None, float | None]:
    """(mean adjusted Rand index, fraction with the same k) of the clustering over subsamples of the rows."""
    if resamples < 1 or U.shape[0] < 2:
        return None, None
    rng = np.random.default_rng(seed + 1)
    size = max(2, int(RESAMPLE_FRACTION * U.shape[0]))
    k = labels.max() + 1
    aris, same = [], 0
    for _ in range(resamples):
        rows = np.sort(rng.choice(U.shape[0], size, replace=False))
        sub, _ = _cluster(U[rows], options, max_rows, seed)
        aris.append(adjusted_rand(labels[rows], sub))
        same += int(sub.max() + 1 == k)
    return round(float(np.mean(aris)), 4), same / resamples


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
    resamples: int = RESAMPLES,
    seed: int = 0,
    cls: int = 0,
) -> ClassPatterns:
    """The patterns of one class's rows X (M, n); ``class_ensemble`` None means ensembles are undefined."""
    X = as_matrix(X, "X", min_cols=2)
    nonzero = np.flatnonzero(np.abs(X).sum(axis=1) > 0)
    if nonzero.size == 0:
        return ClassPatterns(cls, [], None, int(X.shape[0]))
    U = _unit_rows(X[nonzero])
    options = {"kmax": kmax, "min_size": min_size, "min_fraction": min_fraction, "floor": silhouette_floor}
    labels, score = _cluster(U, options, max_rows, seed)
    stability, same_k = _resampled(U, labels, options, max_rows, resamples, seed)
    groups = []
    for j in range(labels.max() + 1):
        inside = np.flatnonzero(labels == j)
        if inside.size:
            centre = U[inside].mean(axis=0)
            groups.append(nonzero[inside[np.argsort(-(U[inside] @ centre), kind="stable")]])  # most typical first
    groups = sorted(groups, key=lambda g: -g.size)  # stable: ties keep the tree's order
    patterns = []
    for rows in groups:
        ensemble = jac = None
        if class_ensemble is not None:
            mean = X[rows].mean(axis=0, keepdims=True)
            ensemble = np.flatnonzero(_ensemble_mask(mean, factor)[0]).tolist()
            jac = _jaccard(ensemble, list(class_ensemble))
        patterns.append(Pattern(rows, ensemble, jac))
    silhouette_score = score if len(patterns) > 1 else None
    return ClassPatterns(cls, patterns, silhouette_score, int(X.shape[0] - nonzero.size), stability, same_k)


def find_patterns(
    X: Any,
    y: Any,
    num_classes: int,
    ensembles: Sequence[Sequence[int] | None] | None,
    images: Any = None,
    **options: Any,
) -> list[ClassPatterns]:
    """:func:`class_patterns` of every class; member indices refer to rows of X, or are ``images[row]``
    (e.g. the test image index of each row) when ``images`` is given."""
    C = check_num_classes(num_classes)
    Xn = as_matrix(X, "X", min_cols=2)
    labels = as_labels(y, Xn.shape[0], C)
    index = np.arange(Xn.shape[0]) if images is None else np.asarray(images, dtype=np.int64)
    if index.shape != (Xn.shape[0],):
        raise ValueError(f"images must give one index per row of X ({Xn.shape[0]}), got shape {index.shape}")
    out = []
    for c in range(C):
        rows = np.flatnonzero(labels == c)
        ens_c = None if ensembles is None else ensembles[c]
        found = class_patterns(Xn[rows], None if ens_c is None else list(ens_c), cls=c, **options)
        for p in found.patterns:
            p.members = index[rows[p.members]]
        out.append(found)
    return out


def microstructure(
    X: Any,
    y: Any,
    num_classes: int,
    ensembles: Sequence[Sequence[int] | None] | None,
    images: Any = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """JSON-ready: one entry per class, ``{"class", "patterns": [{"size", "members", "ensemble",
    "jaccard_with_class"}], "dominant", "silhouette", "silhouette_metric", "stability_ari",
    "stability_same_k", "zero_rows"}``."""
    return [p.to_json() for p in find_patterns(X, y, num_classes, ensembles, images, **options)]
