"""The study's published numbers (shipped as data) and how one of our figures is set beside one of theirs.

`study_tables()` loads `study_tables.yaml` (transcribed from the paper's tables). `compare(ours,
study, kind)` makes one table cell: our mean ± std over n runs, the study's value, the deviation in
the study's standard deviations and whether it is off (more than 3 of them; for accuracies more than
0.01 absolute, since a 10-seed std of 0.001 would flag differences nobody would call a failure).

Tables 4-5 (kind "units") are different: the study gives the mean ± std over the units of a single
run, so a seed-level difference divided by a unit-level spread means nothing. Their cells keep each of
our seeds' layer means and count how many lie within the study's unit spread (mean ± std); only a cell
where none does is off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

SIGMA_LIMIT = 3.0
ACCURACY_LIMIT = 0.01


@cache
def study_tables() -> dict[str, Any]:
    """The study's tables, keyed as in the data file (e.g. ``table1_test_accuracy``)."""
    text = resources.files("ffterm_core.reports").joinpath("study_tables.yaml").read_text(encoding="utf-8")
    tables: dict[str, Any] = yaml.safe_load(text)  # the packaged file is a mapping
    return tables


def study_value(path: tuple[Any, ...]) -> Any:
    """The entry at `path` in the study's tables, None where the study has no such entry."""
    node: Any = study_tables()
    for key in path:
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return None
        if node is None:
            return None
    return node


@dataclass(frozen=True)
class Cell:
    """One figure of a study table: ours beside the study's."""

    mean: float | None
    std: float | None
    n: int
    study_mean: float | None
    study_std: float | None
    kind: str  # "accuracy", "value" or "units": how far is "off"
    not_learned: int = 0  # runs pooled into the cell that did not learn (ffterm_core.records.did_not_learn)
    values: tuple[float, ...] = ()  # kind "units": each seed's value
    unit_std: float | None = None  # kind "units": our spread over the units, mean over the seeds

    @property
    def within(self) -> int | None:
        """Kind "units": how many of our seeds lie within the study's unit spread (mean ± std)."""
        if self.kind != "units" or self.study_mean is None or self.study_std is None:
            return None
        return sum(abs(v - self.study_mean) <= self.study_std for v in self.values)

    @property
    def difference(self) -> float | None:
        if self.mean is None or self.study_mean is None:
            return None
        return self.mean - self.study_mean

    @property
    def deviation(self) -> float | None:
        """(ours − study) in the study's standard deviations; None without a (positive) study std."""
        diff = self.difference
        if diff is None or not self.study_std or self.kind == "units":
            return None
        return diff / self.study_std

    @property
    def off(self) -> bool:
        diff = self.difference
        if diff is None:
            return False
        if self.kind == "accuracy":
            return abs(diff) > ACCURACY_LIMIT
        if self.kind == "units":
            return self.within == 0 and bool(self.values)
        dev = self.deviation
        return dev is not None and abs(dev) > SIGMA_LIMIT

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": self.std,
            "n": self.n,
            "study_mean": self.study_mean,
            "study_std": self.study_std,
            "difference": self.difference,
            "deviation": self.deviation,
            "off": self.off,
            "not_learned": self.not_learned,
            "within": self.within,
        }


def split_study(value: Any) -> tuple[float | None, float | None]:
    """A study entry as (mean, std): ``[m, s]`` → (m, s), a single number → (m, None), null → (None, None)."""
    if value is None:
        return None, None
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return float(value[0]), float(value[1])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), None
    raise ValueError(f"study entry {value!r} is neither a number nor [mean, std]")


def compare(
    ours: dict[str, Any],
    study: Any,
    kind: str = "value",
    *,
    not_learned: int = 0,
    values: tuple[float, ...] = (),
    unit_std: float | None = None,
) -> Cell:
    """A cell from our {"mean", "std", "n"} and the study's entry."""
    study_mean, study_std = split_study(study)
    mean = ours.get("mean")
    mean = None if mean is None or (isinstance(mean, float) and math.isnan(mean)) else float(mean)
    std = ours.get("std")
    n = int(ours.get("n", 0))
    return Cell(
        mean, None if std is None else float(std), n, study_mean, study_std, kind, not_learned, values, unit_std
    )
