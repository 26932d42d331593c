"""A suite's summary laid out as the study's tables: ours (mean ± std, n) beside the study's value.

`build_summary(suite_dir)` reads the suite folder (plan, final.json, probes.json, cached similarity)
and returns the tables each run feeds; `suite_summary.write_summary` writes summary.json, summary.csv and
summary.md (and summary.html with figures where the figure module is installed). Each cell compares
with `ffterm_core.reports.study.compare`: deviation in the study's standard deviations, marked when off
(Tables 4-5: our seeds against the study's unit spread). The tables are laid out as the study prints them
(Tables 2-5, 9, 12-13: a block of layer rows per model or dataset). A cell that pools a run that did not
learn (ffterm_core.records.did_not_learn) says how many with a † footnote, and every summary opens with
those runs and with where the runs are not the study's settings (ffterm_core.suites.departures).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ffterm_core.config import MODEL_KINDS
from ffterm_core.formatting import MISSING, fmt
from ffterm_core.records import CHANCE_MULTIPLE
from ffterm_core.reports.run_report import class_names
from ffterm_core.reports.study import Cell, compare, study_value
from ffterm_core.store import rundir
from ffterm_core.store.validation import final_did_not_learn
from ffterm_core.suites.departures import STUDY_SEED_COUNT, departure_lines
from ffterm_core.suites.pooling import POOLABLE_KEYS, mean_std
from ffterm_core.suites.runner import suite_runs
from ffterm_core.suites.similarity import cross_model, within_model
from ffterm_core.suites.spec import TABLES

MODELS = tuple(MODEL_KINDS)
DATASETS = ("mnist", "fashionmnist", "svhn", "cifar10", "synthetic")
MODEL_NAMES = {k.name: k.display for k in MODEL_KINDS.values()}
DATASET_NAMES = {"mnist": "MNIST", "fashionmnist": "FashionMNIST", "svhn": "SVHN", "cifar10": "CIFAR10"}
SIMILARITY_PAIRS = tuple(itertools.combinations(MODELS, 2))


@dataclass
class Row:
    label: str  # the row's name, or its layer within a block of layer rows
    cells: list[Cell | None]
    settings: list[str] = field(default_factory=list)
    group: str = ""  # the block (e.g. the model of Table 2's layer rows); "" for tables without blocks

    @property
    def full_label(self) -> str:
        return f"{self.group} · layer {self.label}" if self.group else self.label


@dataclass
class StudyTable:
    key: str
    title: str
    columns: list[str]
    rows: list[Row]
    digits: int = 3
    note: str = ""
    heads: tuple[str, ...] = ("",)  # the row-name columns: ("Model", "Layer") for a table of layer blocks

    @property
    def has_study(self) -> bool:
        return any(c is not None and c.study_mean is not None for r in self.rows for c in r.cells)

    @property
    def not_learned(self) -> bool:
        """Whether some cell pools a run that did not learn (then the table carries the † footnote)."""
        return any(c is not None and c.not_learned for r in self.rows for c in r.cells)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "columns": self.columns,
            "note": self.note,
            "heads": list(self.heads),
            "rows": [
                {
                    "label": r.full_label,
                    "group": r.group,
                    "settings": r.settings,
                    "cells": [c.to_dict() if c else None for c in r.cells],
                }
                for r in self.rows
            ],
        }


@dataclass
class Matrix:
    """A figure's matrix (mean over runs), e.g. a layer-1 Jaccard matrix or a layer-by-layer CKA."""

    key: str
    title: str
    labels: list[str]
    values: list[list[float | None]]
    n: int
    group: str = ""  # matrices of one key and group are drawn side by side (Fig. 12: BP-ℓ1 beside FF)
    not_learned: int = 0  # runs averaged in that did not learn

    @property
    def caption(self) -> str:
        learned = f"; {self.not_learned} of them did not learn†" if self.not_learned else ""
        return f"{self.title} (mean over {self.n} runs{learned})"


# ---- reading the suite folder ----------------------------------------------------------------------
def _records(suite_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(finished runs with final/probes/config, every planned run with its state and error)."""
    runs = suite_runs(suite_dir)
    records = []
    for r in runs:
        final = rundir.read_final_if_any(r["path"])
        if final is None:
            continue
        records.append(
            {
                **r,
                "final": final,
                "config": final.get("config", {}),
                "probes": rundir.read_probes(r["path"]),
                "did_not_learn": bool(final_did_not_learn(final)),
            }
        )
    return records, runs


def _feeding(records: list[dict[str, Any]], table: str) -> list[dict[str, Any]]:
    return [r for r in records if table in r["tables"]]


def _by(records: list[dict[str, Any]], *keys: str) -> list[tuple[tuple[Any, ...], list[dict[str, Any]]]]:
    """Records grouped by config keys, in the study's order of models and datasets."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(tuple(r["config"].get(k) for k in keys), []).append(r)

    def order(key: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(_rank(v) for v in key)

    return sorted(groups.items(), key=lambda kv: order(kv[0]))


def _rank(value: Any) -> tuple[int, str]:
    for seq in (MODELS, DATASETS):
        if value in seq:
            return (seq.index(value), "")
    return (99, str(value))


def _settings(rs: list[dict[str, Any]]) -> list[str]:
    return sorted({r["setting"] for r in rs})


def _name(model: str | None = None, dataset: str | None = None) -> str:
    parts = ([MODEL_NAMES.get(model, str(model))] if model else []) + (
        [DATASET_NAMES.get(dataset, str(dataset))] if dataset else []
    )
    return " · ".join(parts)


def _layer_value(r: dict[str, Any], i: int, path: tuple[str, ...]) -> Any:
    layers = r["final"].get("layers") or []
    node: Any = layers[i] if i < len(layers) else None
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _num_layers(rs: list[dict[str, Any]]) -> int:
    return max(len(r["final"].get("layers") or []) for r in rs)


# ---- the tables --------------------------------------------------------------------------------------
def _defined(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _pooled(rs: list[dict[str, Any]], values: list[Any], study: Any, kind: str = "value") -> Cell:
    """A cell pooling `values` (one per run of `rs`), counting the runs behind it that did not learn."""
    flagged = sum(1 for r, v in zip(rs, values) if _defined(v) and r["did_not_learn"])
    return compare(mean_std(values), study, kind, not_learned=flagged)


def _units_cell(rs: list[dict[str, Any]], i: int, stat: str, study: Any) -> Cell:
    """Tables 4-5: each seed's layer mean (and our unit spread) against the study's one-run unit mean ± std."""
    means = [_layer_value(r, i, (stat, "mean")) for r in rs]
    flagged = sum(1 for r, v in zip(rs, means) if _defined(v) and r["did_not_learn"])
    unit_std = mean_std([_layer_value(r, i, (stat, "std")) for r in rs])["mean"]
    values = tuple(float(v) for v in means if _defined(v))
    return compare(mean_std(means), study, "units", not_learned=flagged, values=values, unit_std=unit_std)


def _accuracy_table(records: list[dict[str, Any]], key: str, study_key: str) -> StudyTable | None:
    recs = _feeding(records, key)
    if not recs:
        return None
    models = [m for m in MODELS if any(r["config"].get("model") == m for r in recs)]
    rows = []
    for (dataset,), rs in _by(recs, "dataset"):
        cells: list[Cell | None] = []
        for m in models:
            ms = [r for r in rs if r["config"].get("model") == m]
            values = [r["final"].get("test_accuracy") for r in ms]
            cells.append(_pooled(ms, values, study_value((study_key, dataset, m)), "accuracy") if ms else None)
        rows.append(Row(_name(dataset=dataset), cells, _settings(rs)))
    return StudyTable(key, TABLES[key], [MODEL_NAMES[m] for m in models], rows, digits=3, heads=("Dataset",))


UNITS_NOTE = (
    "The study gives the mean ± std over the units of a single run. Ours: the range and median of our seeds' "
    "layer means, and our own spread over the units (units ±, averaged over the seeds); Δ counts the seeds "
    "whose layer mean lies within the study's unit spread (its mean ± std), ⚠ when none does."
)


@dataclass(frozen=True)
class Grid:
    """A per-layer table laid out as the study's: a block of layer rows per `groups` value, a column per
    `columns` value; the study's entry at study_key/group/column/layer (``study_path`` "gc") or
    study_key/column/layer ("c")."""

    groups: str  # the config key of the row blocks: "model" or "dataset"
    columns: str  # the config key of the columns
    head: str  # the blocks' column head
    study_path: str = "gc"
    suffix: str = ""  # after each block's name


BY_MODEL = Grid("model", "dataset", "Model")  # Tables 2, 3, 12, 13
BY_DATASET = Grid("dataset", "model", "Dataset")  # Tables 4, 5
BP_ACT_L1 = Grid("model", "dataset", "Model", "c", " with activation ℓ1")  # Table 9


def _display(key: str, value: Any) -> str:
    return _name(value) if key == "model" else _name(dataset=value)


def _layer_table(
    records: list[dict[str, Any]],
    key: str,
    study_key: str,
    path: tuple[str, ...],
    grid: Grid,
    digits: int = 3,
    note: str = "",
    units: bool = False,
) -> StudyTable | None:
    """A per-layer figure of final.json (at `path` in each layer), laid out by `grid`; `units`: Tables 4-5."""
    recs = _feeding(records, key)
    if not recs:
        return None
    columns = sorted({r["config"].get(grid.columns) for r in recs}, key=_rank)
    rows = []
    for (group,), rs in _by(recs, grid.groups):
        per_column = [[r for r in rs if r["config"].get(grid.columns) == c] for c in columns]
        for i in range(_num_layers(rs)):
            cells: list[Cell | None] = []
            for c, cs in zip(columns, per_column):
                study = study_value((study_key, group, c, i) if grid.study_path == "gc" else (study_key, c, i))
                if not cs:
                    cells.append(None)
                elif units:
                    cells.append(_units_cell(cs, i, path[0], study))
                else:
                    cells.append(_pooled(cs, [_layer_value(r, i, path) for r in cs], study))
            label = _display(grid.groups, group) + grid.suffix
            rows.append(Row(str(i + 1), cells, _settings(rs), group=label))
    return StudyTable(
        key,
        TABLES[key],
        [_display(grid.columns, c) for c in columns],
        rows,
        digits=digits,
        note=note,
        heads=(grid.head, "Layer"),
    )


def _probe(r: dict[str, Any], layer: int | None, what: str) -> float | None:
    probes = (r.get("probes") or {}).get("layers") or []
    if not probes:
        return None
    row = probes[-1] if layer is None else next((p for p in probes if p.get("layer") == layer), None)
    return None if row is None else row.get(what)


def _probe_tables(records: list[dict[str, Any]], probe_layer: int | None) -> list[StudyTable]:
    where = f"layer {probe_layer}" if probe_layer else "the last layer"
    out = []
    recs = _feeding(records, "table7")
    if recs:
        rows = []
        for (model,), rs in _by([r for r in recs if r["config"].get("heldout_class") is not None], "model"):
            cells: list[Cell | None] = []
            for k in range(10):
                ks = [r for r in rs if r["config"].get("heldout_class") == k]
                study = study_value(("table7_probe_accuracy_on_missing_class", model, k))
                values = [_probe(r, probe_layer, "heldout_accuracy") for r in ks]
                cells.append(_pooled(ks, values, study, "accuracy") if ks else None)
            rows.append(Row(MODEL_NAMES.get(model, model), cells, _settings(rs)))
        out.append(
            StudyTable(
                "table7",
                TABLES["table7"],
                [f"class {k}" for k in range(10)],
                rows,
                note=f"a linear probe on {where} (plain images) of the model trained without class k, its "
                "accuracy on class k's test images",
                heads=("Model",),
            )
        )
    table8 = _table8(_feeding(records, "table8"), probe_layer, where)
    return out + ([table8] if table8 else [])


TABLE8_COLUMNS = [*(f"class {k}" for k in range(10)), "avg", "baseline", "probe, all classes"]


def _table8(recs: list[dict[str, Any]], probe_layer: int | None, where: str) -> StudyTable | None:
    """Table 8 as the study's: class k is a probe's accuracy on all classes for the model trained without k,
    avg their mean, baseline the all-class model's own test accuracy (the study's Baseline is Table 1's);
    the probe on the all-class model is ours alone (the like-with-like partner of the class columns)."""
    if not recs:
        return None
    rows = []
    for (model,), rs in _by(recs, "model"):
        study = ("table8_probe_accuracy_all_classes", model)
        held = [r for r in rs if r["config"].get("heldout_class") is not None]
        base = [r for r in rs if r["config"].get("heldout_class") is None]
        cells: list[Cell | None] = []
        for k in range(10):
            ks = [r for r in held if r["config"].get("heldout_class") == k]
            values = [_probe(r, probe_layer, "accuracy") for r in ks]
            cells.append(_pooled(ks, values, study_value((*study, "per_class", k)), "accuracy") if ks else None)
        avg = [_probe(r, probe_layer, "accuracy") for r in held]
        cells.append(_pooled(held, avg, study_value((*study, "avg")), "accuracy") if held else None)
        accuracy = [r["final"].get("test_accuracy") for r in base]
        cells.append(_pooled(base, accuracy, study_value((*study, "baseline")), "accuracy") if base else None)
        probed = [_probe(r, probe_layer, "accuracy") for r in base]
        cells.append(_pooled(base, probed, None, "accuracy") if base and any(map(_defined, probed)) else None)
        rows.append(Row(MODEL_NAMES.get(model, model), cells, _settings(rs)))
    note = (
        f"class k: a linear probe on {where} (plain images) of the model trained without class k, its accuracy "
        "on all ten classes; avg: the mean over the held-out runs; baseline: the test accuracy of the model "
        "itself trained on all classes (the study's Baseline, equal to its Table 1); probe, all classes: ours "
        "only, the same probe on that all-class model (the like-with-like partner of the class columns)"
    )
    return StudyTable("table8", TABLES["table8"], TABLE8_COLUMNS, rows, note=note, heads=("Model",))


def _heldout_ensembles(records: list[dict[str, Any]]) -> StudyTable | None:
    recs = [r for r in _feeding(records, "heldout-ensembles") if r["final"].get("heldout")]
    if not recs:
        return None
    rows, width = [], 0
    for (model, k), rs in _by(recs, "model", "heldout_class"):
        n = max(len(r["final"]["heldout"].get("layers") or []) for r in rs)
        width = max(width, n)
        cells: list[Cell | None] = []
        for i in range(n):
            for what in ("ensemble_size_pct", "shared_with_seen_total"):
                vals = [_at(r["final"]["heldout"].get("layers"), i, what) for r in rs]
                cells.append(_pooled(rs, vals, None))
        rows.append(Row(f"{MODEL_NAMES.get(model, model)} · class {k} held out", cells, _settings(rs)))
    columns = [f"layer {i + 1} {c}" for i in range(width) for c in ("E_k size %", "E_k units in seen ensembles")]
    return StudyTable(
        "heldout-ensembles",
        TABLES["heldout-ensembles"],
        columns,
        rows,
        digits=1,
        note="no study values: the study shows these as figures",
        heads=("Held-out run",),
    )


def _at(layers: list[Any] | None, i: int, key: str) -> Any:
    return layers[i].get(key) if layers and i < len(layers) and isinstance(layers[i], dict) else None


def _similarity_table(
    records: list[dict[str, Any]], suite_dir: Path, compute: bool, log: Callable[[str], None]
) -> StudyTable | None:
    recs = _feeding(records, "table10")
    if not recs:
        return None
    rows, width = [], 0
    for (dataset,), rs in _by(recs, "dataset"):
        per_model = {m: [r for r in rs if r["config"].get("model") == m] for m in MODELS}
        for a, b in SIMILARITY_PAIRS:
            if not per_model[a] or not per_model[b]:
                continue
            values = cross_model(suite_dir, per_model[a], per_model[b], compute, log)
            flagged = _flagged_pairs(per_model[a], per_model[b])
            for metric in ("svcca", "cka", "dcor"):
                layers = values[metric]
                width = max(width, len(layers))
                cells: list[Cell | None] = [
                    compare(
                        mean_std(v),
                        study_value(("table10_similarity", dataset, metric, f"{a}_{b}", i)),
                        not_learned=min(flagged, len(v)),
                    )
                    for i, v in enumerate(layers)
                ]
                label = f"{_name(dataset=dataset)} · {metric.upper() if metric != 'dcor' else 'dCor'} · {MODEL_NAMES[a]} vs {MODEL_NAMES[b]}"
                rows.append(Row(label, cells, _settings(per_model[a] + per_model[b])))
    note = "seed i of one model against seed i of the other; mean ± std over the pairs; the study gives no std"
    return StudyTable("table10", TABLES["table10"], [f"layer {i + 1}" for i in range(width)], rows, digits=2, note=note)


def _flagged_pairs(runs_a: list[dict[str, Any]], runs_b: list[dict[str, Any]]) -> int:
    """Seed-matched pairs (as suites.similarity.cross_model pairs them) with a run that did not learn."""
    by_seed = {r["seed"]: r for r in runs_b}
    return sum(
        1 for a in runs_a if a["seed"] in by_seed and (a["did_not_learn"] or by_seed[a["seed"]]["did_not_learn"])
    )


def _matrices(
    records: list[dict[str, Any]], suite_dir: Path, compute: bool, log: Callable[[str], None]
) -> list[Matrix]:
    out = []
    for (model, dataset, act_l1), rs in _by(_feeding(records, "fig12"), "model", "dataset", "act_l1"):
        with_mats = [(r, m) for r, m in ((r, _layer_value(r, 0, ("jaccard",))) for r in rs) if m]
        mats = [m for _, m in with_mats]
        if mats:
            name = _name(model, dataset) + (f" (act ℓ1 {act_l1:g})" if act_l1 else "")
            out.append(
                Matrix(
                    "fig12",
                    f"Layer-1 Jaccard, {name}",
                    class_names(dataset, len(mats[0])),
                    _mean_matrix(mats),
                    len(mats),
                    group=str(dataset),
                    not_learned=sum(1 for r, _ in with_mats if r["did_not_learn"]),
                )
            )
    for (model, dataset), rs in _by(_feeding(records, "fig13"), "model", "dataset"):
        values = within_model(suite_dir, rs, compute, log)
        if values:
            means = [[mean_std(v)["mean"] for v in row] for row in values]
            out.append(
                Matrix(
                    "fig13",
                    f"Layer-by-layer linear CKA, {_name(model, dataset)}",
                    [f"layer {i + 1}" for i in range(len(values))],
                    means,
                    len(values[0][0]),
                    not_learned=sum(1 for r in rs if r["did_not_learn"]),
                )
            )
    return out


def _mean_matrix(mats: list[list[list[float | None]]]) -> list[list[float | None]]:
    n = len(mats[0])
    return [[mean_std([m[i][j] for m in mats if len(m) == n])["mean"] for j in range(n)] for i in range(n)]


# ---- the whole summary -----------------------------------------------------------------------------------
#: The study's seeds per cell, for the tables it reports over several (Tables 4-5 are one run, 7-8 one per class).
STUDY_SEEDS = {
    **{t: STUDY_SEED_COUNT for t in ("table1", "table2", "table3", "table11", "table12", "table13")},
    "table10": 5,
}


def build_summary(
    suite_dir: Path, *, compute_similarity: bool = True, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every table the suite's finished runs feed, plus the run states and failures, the runs that did not
    learn and where the runs are not the study's settings."""
    from ffterm_core.suites.plan import read_plan

    suite_dir = Path(suite_dir)
    plan = read_plan(suite_dir) or {}
    records, runs = _records(suite_dir)
    probe_layer = plan.get("probe_layer")
    sparsity, size = ("sparsity",), ("ensemble_size_pct",)
    candidates: list[StudyTable | None] = [
        _accuracy_table(records, "table1", "table1_test_accuracy"),
        _layer_table(records, "table2", "table2_sparsity", sparsity, BY_MODEL),
        _layer_table(records, "table3", "table3_ensemble_size_pct", size, BY_MODEL, digits=2),
        _layer_table(records, "table4", "table4_rho_plus", ("rho_plus",), BY_DATASET, note=UNITS_NOTE, units=True),
        _layer_table(records, "table5", "table5_bias", ("bias",), BY_DATASET, note=UNITS_NOTE, units=True),
        *_probe_tables(records, probe_layer),
        _heldout_ensembles(records),
        _layer_table(records, "table9", "table9_bp_act_l1_sparsity", sparsity, BP_ACT_L1),
        _similarity_table(records, suite_dir, compute_similarity, log),
        _accuracy_table(records, "table11", "table11_l1_test_accuracy"),
        _layer_table(records, "table12", "table12_l1_sparsity", sparsity, BY_MODEL),
        _layer_table(records, "table13", "table13_l1_ensemble_size_pct", size, BY_MODEL, digits=2),
    ]
    tables = [t for t in candidates if t is not None]
    states: dict[str, int] = {}
    for r in runs:
        states[r["state"]] = states.get(r["state"], 0) + 1
    return {
        "suite": plan.get("name"),
        "description": plan.get("description"),
        "states": states,
        "failed": [{"run": r["dir"], "error": r["error"]} for r in runs if r["state"] == "failed"],
        "did_not_learn": [
            {"run": r["dir"], "test_accuracy": r["final"].get("test_accuracy")} for r in records if r["did_not_learn"]
        ],
        "not_the_study": _not_the_study(records, tables),
        "tables": tables,
        "matrices": _matrices(records, suite_dir, compute_similarity, log),
    }


def _not_the_study(records: list[dict[str, Any]], tables: list[StudyTable]) -> list[str]:
    """One line per setting whose settings are not the study's, and per table with fewer seeds than its."""
    configs: dict[str, dict[str, Any]] = {}
    for r in records:
        configs.setdefault(r["setting"], r["config"])
    lines = departure_lines(configs, POOLABLE_KEYS)
    for t in tables:
        seeds = max((c.n for row in t.rows for c in row.cells if c is not None), default=0)
        if t.key in STUDY_SEEDS and seeds < STUDY_SEEDS[t.key]:
            runs = f"{seeds} seed{'s' if seeds != 1 else ''}"
            lines.append(f"{t.title.split(':')[0]}: at most {runs} per cell (the study's {STUDY_SEEDS[t.key]})")
    return lines


# ---- rendering ------------------------------------------------------------------------------------------
NOT_LEARNED_NOTE = (
    f"† did not learn: the run's final test accuracy is below {CHANCE_MULTIPLE:g}× chance (1 / the number of "
    "classes); such runs are pooled into the cell as they are, and the cell says how many of its n they are."
)
LEGEND = (
    "Each cell: ours (mean ± std over n runs) | the study's value | the difference, and for Tables 1-3 and "
    "11-13 the deviation in the study's standard deviations (its std over 10 seeds); ⚠ marks more than 3σ "
    "(accuracies: more than 0.01). Tables 4-5 compare each seed with the study's spread over the units of one "
    "run (see their caption). † marks a cell that pools a run that did not learn."
)


def cell_texts(cell: Cell | None, digits: int) -> tuple[str, str, str]:
    """(ours, study, comparison) as text; the comparison ends in ⚠ when off, ours in † with runs that did
    not learn."""
    if cell is None:
        return MISSING, MISSING, ""
    if cell.mean is None:
        ours = MISSING
    elif cell.kind == "units":
        ours = _units_text(cell, digits)
    else:
        ours = f"{fmt(cell.mean, digits)} ± {fmt(cell.std, digits)} (n={cell.n}"
        ours += f"; {cell.not_learned} did not learn†)" if cell.not_learned else ")"
    if cell.study_mean is None:
        study = MISSING
    else:
        study = fmt(cell.study_mean, digits) + (
            f" ± {fmt(cell.study_std, digits)}" if cell.study_std is not None else ""
        )
    parts = []
    if cell.within is not None:
        parts.append(f"{cell.within}/{len(cell.values)} within")
    elif cell.difference is not None and (cell.kind == "accuracy" or cell.deviation is None):
        parts.append(f"Δ {cell.difference:+.{digits}f}")
    if cell.deviation is not None:
        parts.append(f"{cell.deviation:+.1f}σ")
    dev = ", ".join(parts) + (" ⚠" if cell.off else "")
    return ours, study, dev


def _units_text(cell: Cell, digits: int) -> str:
    """Tables 4-5: the seeds' layer means (range and median, or the one), our unit spread, n."""
    vs = sorted(cell.values)
    low, high = fmt(vs[0], digits), fmt(vs[-1], digits)
    seeds = low if low == high else f"{low} to {high}, median {fmt(statistics.median(vs), digits)}"
    spread = f"; units ± {fmt(cell.unit_std, digits)}" if cell.unit_std is not None else ""
    learned = f"; {cell.not_learned} did not learn†" if cell.not_learned else ""
    return f"{seeds}{spread} (n={cell.n}{learned})"


def shown_columns(table: StudyTable) -> list[int]:
    """The columns some run fills (e.g. Table 7 from a suite that held out two of the ten classes)."""
    return [c for c in range(len(table.columns)) if any(c < len(r.cells) and r.cells[c] for r in table.rows)]


def table_header(table: StudyTable) -> list[str]:
    """The row-name heads, then per column ours / study / Δ, or just the column where the study has no values."""
    columns = [table.columns[c] for c in shown_columns(table)]
    if not table.has_study:
        return [*table.heads, *columns]
    return [*table.heads] + [f"{c} {part}" for c in columns for part in ("ours", "study", "Δ")]


def table_rows(table: StudyTable) -> list[list[str]]:
    """The rows as text; a block's name only on its first row (as the study prints Tables 2-5, 9, 12-13)."""
    rows, previous = [], None
    for row in table.rows:
        cells = [row.label] if len(table.heads) == 1 else [row.group if row.group != previous else "", row.label]
        previous = row.group
        for c in shown_columns(table):
            texts = cell_texts(row.cells[c] if c < len(row.cells) else None, table.digits)
            cells += list(texts) if table.has_study else [texts[0]]
        rows.append(cells)
    return rows


def caption(table: StudyTable) -> str:
    """The table's note, with the † footnote where a cell pools a run that did not learn."""
    return " ".join(p for p in (table.note, NOT_LEARNED_NOTE if table.not_learned else "") if p)


def learning_line(summary: dict[str, Any]) -> str | None:
    """The warning every summary opens with when some of its runs did not learn."""
    bad = summary.get("did_not_learn") or []
    if not bad:
        return None
    runs = ", ".join(f"{b['run']} ({fmt(b['test_accuracy'], 3)})" for b in bad)
    return (
        f"⚠ {len(bad)} run{'s' if len(bad) > 1 else ''} did not learn (final test accuracy below "
        f"{CHANCE_MULTIPLE:g}× chance; marked † in every cell that pools them): {runs}"
    )


NOT_THE_STUDY = "Not the study's settings (these numbers are not a reproduction of its tables):"


def to_markdown(summary: dict[str, Any]) -> str:
    states = ", ".join(f"{n} {s}" for s, n in sorted(summary["states"].items()))
    lines = [f"# Suite {summary['suite']}: {states}", ""]
    warning = learning_line(summary)
    if warning:
        lines += [f"**{warning}**", ""]
    if summary.get("not_the_study"):
        lines += [f"**{NOT_THE_STUDY}**", "", *(f"- {line}" for line in summary["not_the_study"]), ""]
    if summary.get("description"):
        lines += [summary["description"], ""]
    lines += [LEGEND, ""]
    for t in summary["tables"]:
        lines += [f"## {t.title}", ""]
        header = table_header(t)
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(t)]
        lines.append("")
        if caption(t):
            lines += [f"_{caption(t)}_", ""]
    for m in summary["matrices"]:
        lines += [f"## {m.caption}", ""]
        lines += ["| | " + " | ".join(m.labels) + " |", "|" + "---|" * (len(m.labels) + 1)]
        for label, row in zip(m.labels, m.values):
            lines.append(f"| {label} | " + " | ".join(fmt(v, 2) for v in row) + " |")
        lines.append("")
        if m.not_learned:
            lines += [f"_{NOT_LEARNED_NOTE}_", ""]
    if summary["failed"]:
        lines += ["## Failed runs", ""] + [f"- `{f['run']}`: {f['error']}" for f in summary["failed"]] + [""]
    return "\n".join(lines)


CSV_FIELDS = (
    "table",
    "row",
    "column",
    "mean",
    "std",
    "n",
    "study_mean",
    "study_std",
    "difference",
    "deviation",
    "off",
    "not_learned",
    "within",
)


def to_csv(summary: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    for t in summary["tables"]:
        for row in t.rows:
            for col, cell in zip(t.columns, row.cells):
                if cell is not None:
                    d = cell.to_dict()
                    writer.writerow([t.key, row.full_label, col, *(d[k] for k in CSV_FIELDS[3:])])
    return buf.getvalue()


def to_json(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: summary[k] for k in ("suite", "description", "states", "failed", "did_not_learn", "not_the_study")},
        "tables": [t.to_dict() for t in summary["tables"]],
        "matrices": [vars(m) for m in summary["matrices"]],
    }
