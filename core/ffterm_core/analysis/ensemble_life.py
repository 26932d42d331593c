"""The life of an ensemble unit: when each unit joined and left its class ensemble (docs/algorithms.md,
"Ensemble life").

Built from the evaluated snapshots (a RunHistory's per-evaluation ensembles), per layer and class:

- the raster: unit × evaluation, True when the unit is in the class's ensemble at that evaluation,
  None at evaluations where the layer's ensembles are undefined (sparsity < 0.5). Rows are the units
  that were ever members, ascending.
- joins and leaves at each evaluation: units that entered / left the ensemble since the previous
  evaluation at which it was defined (undefined evaluations say nothing about membership and are
  skipped). At the first defined evaluation every member counts as joined. Turnover = joins + leaves;
  None at undefined evaluations.
- ``joined[u]``: the epoch of unit u's *last* entry; ``left[u]``: the epoch of its *last* exit, absent
  when it never left. So a unit in the final ensemble either has no ``left`` or ``left < joined`` (it
  left and came back); a unit outside the final ensemble has ``left > joined``.
- ``stable_epoch``: the first evaluation epoch from which on the Jaccard index between the ensemble and
  the final one (the last evaluation's) is ≥ 0.9 at every evaluation where it is defined; None when the
  final ensemble is undefined or empty (the Jaccard index of two empty sets is 0).

The ensembles are the history's like-with-like ones (`RunHistory.ensembles_at`): every evaluation on
the live image set, the last one too; a frozen layer (sequential FF, its stage done) on the images
correctly classified at its first evaluation after the freeze, so its membership no longer changes.
What the evaluations saw on their own correct images still changes for a frozen layer: that is the
image set's drift, counted apart (``drift``: units in or out of the observed ensemble since the
previous evaluation, at evaluations after the freeze; None elsewhere), never as the layer's turnover.
A class whose ensemble is undefined at an evaluation (no correct image) says nothing about membership
there: None in the raster, no joins or leaves.

`EnsembleLife.update(history)` consumes only the evaluations added since its last call (cheap enough
to call on every snapshot); when the history dropped or replaced points (a resumed run, the final
snapshot replacing the last live one) it starts over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ffterm_core.records import ClassLifeRecord
from ffterm_core.store import rundir
from ffterm_core.store.history import RunHistory, jaccard

STABLE_JACCARD = 0.9

Members = frozenset[int] | None


@dataclass
class ClassLife:
    epochs: list[int] = field(default_factory=list)  # every evaluation (the raster's columns)
    members: list[Members] = field(default_factory=list)
    joins: list[int | None] = field(default_factory=list)
    leaves: list[int | None] = field(default_factory=list)
    joined: dict[int, int] = field(default_factory=dict)
    left: dict[int, int] = field(default_factory=dict)
    drift: list[int | None] = field(default_factory=list)  # the image set's change at a frozen layer
    frozen_from: int | None = None  # epoch of the first evaluation on the fixed image set
    _last: frozenset[int] | None = None  # members at the last defined evaluation
    _last_observed: frozenset[int] | None = None

    def add(self, epoch: int, members: Members, observed: Members = None, fixed: bool = False) -> None:
        """One evaluation; `fixed`: the layer is frozen and `members` are on its fixed image set, while
        `observed` are the evaluation's own (their change is the drift)."""
        self.epochs.append(epoch)
        self.members.append(members)
        self._add_drift(epoch, observed if fixed else members, fixed)
        if members is None:
            self.joins.append(None)
            self.leaves.append(None)
            return
        before = self._last or frozenset()
        entered, exited = members - before, before - members
        for u in entered:
            self.joined[u] = epoch
        for u in exited:
            self.left[u] = epoch
        self.joins.append(len(entered))
        self.leaves.append(len(exited))
        self._last = members

    def _add_drift(self, epoch: int, observed: Members, fixed: bool) -> None:
        if fixed and self.frozen_from is None:
            self.frozen_from = self.epochs[-2] if len(self.epochs) > 1 else epoch
        before = self._last_observed
        self.drift.append(len(observed ^ before) if fixed and observed is not None and before is not None else None)
        if observed is not None:
            self._last_observed = observed

    @property
    def turnover(self) -> list[int | None]:
        return [None if j is None or v is None else j + v for j, v in zip(self.joins, self.leaves)]

    def stable_epoch(self, threshold: float = STABLE_JACCARD) -> int | None:
        final = self.members[-1] if self.members else None
        if not final:
            return None
        stable = None
        for epoch, members in zip(reversed(self.epochs), reversed(self.members)):
            if members is None:
                continue
            if jaccard(members, final) < threshold:
                break
            stable = epoch
        return stable

    def raster(self) -> tuple[list[int], list[list[bool | None]]]:
        """(units ever in the ensemble, ascending; one row per unit over the evaluations)."""
        units = sorted(self.joined)
        rows = [[None if m is None else u in m for m in self.members] for u in units]
        return units, rows

    def to_json(self, threshold: float = STABLE_JACCARD) -> ClassLifeRecord:
        record: ClassLifeRecord = {
            "stable_epoch": self.stable_epoch(threshold),
            "joined": {str(u): e for u, e in sorted(self.joined.items())},
            "left": {str(u): e for u, e in sorted(self.left.items())},
        }
        if self.frozen_from is not None:
            record["frozen_from"] = self.frozen_from
            record["drift"] = sum(d for d in self.drift if d is not None)
        return record


class EnsembleLife:
    """Per layer and class, the life of every ensemble unit over a run's evaluations."""

    def __init__(self, threshold: float = STABLE_JACCARD) -> None:
        self.threshold = threshold
        self._reset()

    def _reset(self) -> None:
        self.epochs: list[int] = []
        self.layers: list[list[ClassLife]] = []
        self._seen: list[list[Column]] = []  # the history's ensemble tuples consumed, to notice replacements

    @classmethod
    def from_history(cls, history: RunHistory, threshold: float = STABLE_JACCARD) -> EnsembleLife:
        life = cls(threshold)
        life.update(history)
        return life

    def update(self, history: RunHistory) -> int:
        """Consume the history's new evaluations; return how many were added."""
        n = len(self.epochs)
        if history.eval_epochs[:n] != self.epochs or any(
            _column(history, i, layer)[k] is not seen[k]
            for i, row in enumerate(self._seen)
            for layer, seen in enumerate(row)
            for k in range(2)
        ):
            self._reset()
            n = 0
        for i in range(n, len(history.eval_epochs)):
            row = [_column(history, i, layer) for layer in range(history.num_layers)]
            self._add(history.eval_epochs[i], row)
            self._seen.append(row)
        return len(history.eval_epochs) - n

    def _add(self, epoch: int, layers: list[Column]) -> None:
        columns = len(self.epochs)
        self.epochs.append(epoch)
        while len(self.layers) < len(layers):
            self.layers.append([])
        for classes, (ensembles, observed, fixed) in zip(
            self.layers, layers + [(None, None, False)] * (len(self.layers) - len(layers))
        ):
            while ensembles is not None and len(classes) < len(ensembles):
                late = ClassLife()
                for e in self.epochs[:columns]:  # a class first seen now: undefined before
                    late.add(e, None)
                classes.append(late)
            for c, life in enumerate(classes):
                life.add(epoch, _class(ensembles, c), _class(observed, c), fixed)

    def of(self, layer: int, cls: int) -> ClassLife | None:
        try:
            return self.layers[layer][cls]
        except IndexError:
            return None

    def to_json(self) -> list[list[ClassLifeRecord]]:
        """final.json's ``ensemble_life``: per layer, per class ``{"stable_epoch", "joined", "left"}``."""
        return [[life.to_json(self.threshold) for life in classes] for classes in self.layers]


Ensembles = tuple[frozenset[int] | None, ...] | None
Column = tuple[Ensembles, Ensembles, bool]  # a layer at an evaluation: like with like, observed, on a fixed set


def _column(history: RunHistory, i: int, layer: int) -> Column:
    fixed = i > 0 and history.frozen_at(i - 1, layer)  # frozen since an earlier evaluation
    return history.ensembles_at(i, layer), history.observed_at(i, layer), fixed


def _class(ensembles: Ensembles, c: int) -> Members:
    return ensembles[c] if ensembles is not None and c < len(ensembles) else None


def ensemble_life_of_run(run_dir: Path) -> list[list[ClassLifeRecord]]:
    """``ensemble_life`` of a run from its snapshots.jsonl."""
    return EnsembleLife.from_history(RunHistory.from_snapshots(rundir.read_snapshots(run_dir))).to_json()
