"""Rankings for pruning: each orders a layer's units, most important first (docs/algorithms.md, "Pruning").

Every ranking is an array of unit indices; keeping the first ``keep_count(f, n)`` of it keeps the
fraction f, so the kept sets are nested. Ensemble strategies read the margin matrix of the ensemble
rule, ``margin[c, i] = m_ci − f·LOO_ci`` (positive exactly for members of class c's ensemble).

For the global target (one fraction of all units of every layer) a layer's scores are z-scored first
(per class row for margins, per layer otherwise), so a unit's place says how far it stands out within
its own layer; units of all layers are then ranked together by the same rule. Global unit ids are
``layer · n + unit``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ffterm_core.analysis.ensembles import _ensemble_mask, class_means
from ffterm_core.data.embedding import NUM_LABELS


@dataclass(frozen=True)
class Margins:
    """The ensemble rule on one layer: margins (C, n) of the classes seen, and membership (C, n)."""

    margin: np.ndarray
    member: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray, y: np.ndarray, factor: float, num_classes: int = NUM_LABELS) -> Margins:
        """From activations X (rows: images) with labels y; classes without images are left out."""
        means, counts = class_means(np.asarray(X, dtype=np.float64), np.asarray(y), num_classes)
        means = means[counts > 0]
        n = means.shape[1]
        loo = (means.sum(axis=1, keepdims=True) - means) / max(n - 1, 1)
        return cls(means - factor * loo, _ensemble_mask(means, factor))

    def zscored(self) -> Margins:
        """Each class row standardised over the layer's units (a constant row becomes 0)."""
        mean = self.margin.mean(axis=1, keepdims=True)
        std = self.margin.std(axis=1, keepdims=True)
        return Margins((self.margin - mean) / np.where(std > 0, std, 1.0), self.member)

    @staticmethod
    def joined(layers: list[Margins]) -> Margins:
        """The layers' z-scored margins side by side: one matrix over global unit ids."""
        z = [m.zscored() for m in layers]
        return Margins(np.concatenate([m.margin for m in z], axis=1), np.concatenate([m.member for m in z], axis=1))

    @property
    def union(self) -> np.ndarray:
        """(n,) bool: the unit is in some class's ensemble."""
        return np.asarray(self.member.any(axis=0), dtype=bool)


def _by_score(score: np.ndarray, units: np.ndarray) -> np.ndarray:
    """`units` by score, largest first; ties by index."""
    return units[np.lexsort((units, -score[units]))]


def largest_margin_order(m: Margins) -> np.ndarray:
    """Ensemble members first, then the rest; each group by the unit's largest margin over any class."""
    n = m.margin.shape[1]
    if m.margin.shape[0] == 0:
        return np.arange(n)
    best = m.margin.max(axis=0)
    return np.lexsort((np.arange(n), -best, ~m.union))  # last key first: union, margin, index


def balanced_order(m: Margins) -> np.ndarray:
    """Class-balanced round-robin over the ensembles: each class in turn (0, 1, …) takes its next unit by
    its own margin, skipping units already taken; a class whose ensemble is used up drops out. Units in
    no ensemble come after, by their largest margin."""
    n = m.margin.shape[1]
    queues = [_by_score(row, np.flatnonzero(member)) for row, member in zip(m.margin, m.member)]
    taken = np.zeros(n, dtype=bool)
    order: list[int] = []
    heads = [0] * len(queues)
    while any(h < len(q) for h, q in zip(heads, queues)):
        for c, queue in enumerate(queues):
            while heads[c] < len(queue) and taken[queue[heads[c]]]:
                heads[c] += 1
            if heads[c] < len(queue):
                unit = int(queue[heads[c]])
                taken[unit] = True
                order.append(unit)
                heads[c] += 1
    rest = np.flatnonzero(~taken)
    best = m.margin.max(axis=0) if m.margin.shape[0] else np.zeros(n)
    return np.concatenate([np.array(order, dtype=np.int64), _by_score(best, rest)])


def score_order(score: np.ndarray) -> np.ndarray:
    """Units by a score (weight norm, mean activity), largest first."""
    score = np.asarray(score, dtype=np.float64)
    return _by_score(score, np.arange(score.size))


def zscore(score: np.ndarray) -> np.ndarray:
    score = np.asarray(score, dtype=np.float64)
    std = float(score.std())
    return np.asarray((score - score.mean()) / (std if std > 0 else 1.0))


def random_orders(n: int, draws: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`draws` permutations of n units."""
    return [rng.permutation(n) for _ in range(draws)]


def random_within_orders(union: np.ndarray, draws: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`draws` rankings that put a random permutation of the ensemble units first, then one of the rest:
    up to the union's size, the kept units are a uniform draw from the union."""
    inside, outside = np.flatnonzero(union), np.flatnonzero(~union)
    return [np.concatenate([rng.permutation(inside), rng.permutation(outside)]) for _ in range(draws)]


def keep_count(fraction: float, n: int) -> int:
    """Units kept of n at a fraction: round half up, at least one."""
    return max(1, min(n, math.floor(fraction * n + 0.5)))


def split_global(order: np.ndarray, fraction: float, n: int, layers: int) -> list[np.ndarray]:
    """The kept global ids at a fraction, as each layer's kept units (sorted; a layer may keep none)."""
    kept = np.sort(order[: keep_count(fraction, n * layers)])
    return [kept[(kept >= layer * n) & (kept < (layer + 1) * n)] - layer * n for layer in range(layers)]
