"""A suite's summary laid out as the study's tables: ours (mean ± std, n) beside the study's value.

`build_summary(suite_dir)` reads the suite folder (plan, final.json, probes.json, cached similarity)
and returns the tables each run feeds; `suite_summary.write_summary` writes summary.json, summary.csv and
summary.md (and summary.html with figures where the figure module is installed). Each cell compares
with `ffterm_core.reports.study.compare`: deviation in the study's standard deviations, marked when off.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ffterm_core.config import MODEL_KINDS
from ffterm_core.formatting import MISSING, fmt
from ffterm_core.reports.run_report import class_names
from ffterm_core.reports.study import Cell, compare, study_value
from ffterm_core.store import rundir
from ffterm_core.suites.pooling import mean_std
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
    label: str
    cells: list[Cell | None]
    settings: list[str] = field(default_factory=list)


@dataclass
class StudyTable:
    key: str
    title: str
    columns: list[str]
    rows: list[Row]
    digits: int = 3
    note: str = ""

    @property
    def has_study(self) -> bool:
        return any(c is not None and c.study_mean is not None for r in self.rows for c in r.cells)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "columns": self.columns,
            "note": self.note,
            "rows": [
                {"label": r.label, "settings": r.settings, "cells": [c.to_dict() if c else None for c in r.cells]}
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
            {**r, "final": final, "config": final.get("config", {}), "probes": rundir.read_probes(r["path"])}
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
            cells.append(
                compare(
                    mean_std([r["final"].get("test_accuracy") for r in ms]),
                    study_value((study_key, dataset, m)),
                    "accuracy",
                )
                if ms
                else None
            )
        rows.append(Row(_name(dataset=dataset), cells, _settings(rs)))
    return StudyTable(key, TABLES[key], [MODEL_NAMES[m] for m in models], rows, digits=3)


UNIT_SPREAD = "the study's ± is the spread over the units of one run; ours is over the seeds' unit means"


def _layer_table(
    records: list[dict[str, Any]],
    key: str,
    study_key: str,
    path: tuple[str, ...],
    study_order: str,
    digits: int = 3,
    note: str = "",
) -> StudyTable | None:
    """Rows model × dataset (or dataset × model), a column per layer; the study entry at
    study_key/model/dataset/layer (study_order "md"), …/dataset/model/layer ("dm") or …/dataset/layer ("d")."""
    recs = _feeding(records, key)
    if not recs:
        return None
    keys = ("dataset", "model") if study_order in ("dm", "d") else ("model", "dataset")
    rows, width = [], 0
    for group, rs in _by(recs, *keys):
        vals = dict(zip(keys, group))
        prefix: tuple[Any, ...] = {
            "md": (vals["model"], vals["dataset"]),
            "dm": (vals["dataset"], vals["model"]),
            "d": (vals["dataset"],),
        }[study_order]
        n = _num_layers(rs)
        width = max(width, n)
        cells: list[Cell | None] = [
            compare(mean_std([_layer_value(r, i, path) for r in rs]), study_value((study_key, *prefix, i)))
            for i in range(n)
        ]
        label = (
            _name(dataset=vals["dataset"]) + " (BP, act ℓ1)"
            if study_order == "d"
            else _name(vals["model"], vals["dataset"])
        )
        rows.append(Row(label, cells, _settings(rs)))
    return StudyTable(key, TABLES[key], [f"layer {i + 1}" for i in range(width)], rows, digits=digits, note=note)


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
                ours = mean_std([_probe(r, probe_layer, "heldout_accuracy") for r in ks])
                cells.append(
                    compare(ours, study_value(("table7_probe_accuracy_on_missing_class", model, k)), "accuracy")
                    if ks
                    else None
                )
            rows.append(Row(MODEL_NAMES.get(model, model), cells, _settings(rs)))
        out.append(
            StudyTable(
                "table7",
                TABLES["table7"],
                [f"class {k}" for k in range(10)],
                rows,
                note=f"probes on {where}, plain images",
            )
        )
    recs = _feeding(records, "table8")
    if recs:
        rows = []
        for (model,), rs in _by(recs, "model"):
            study = ("table8_probe_accuracy_all_classes", model)
            held = [r for r in rs if r["config"].get("heldout_class") is not None]
            cells = []
            for k in range(10):
                ks = [r for r in held if r["config"].get("heldout_class") == k]
                ours = mean_std([_probe(r, probe_layer, "accuracy") for r in ks])
                cells.append(compare(ours, study_value((*study, "per_class", k)), "accuracy") if ks else None)
            avg = mean_std([_probe(r, probe_layer, "accuracy") for r in held])
            base = [r for r in rs if r["config"].get("heldout_class") is None]
            cells.append(compare(avg, study_value((*study, "avg")), "accuracy") if held else None)
            baseline = mean_std([_probe(r, probe_layer, "accuracy") for r in base])
            cells.append(compare(baseline, study_value((*study, "baseline")), "accuracy") if base else None)
            rows.append(Row(MODEL_NAMES.get(model, model), cells, _settings(rs)))
        columns = [f"class {k}" for k in range(10)] + ["avg", "baseline"]
        out.append(
            StudyTable(
                "table8", TABLES["table8"], columns, rows, note=f"probes on {where}; baseline: trained on all classes"
            )
        )
    return out


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
                cells.append(compare(mean_std(vals), None))
        rows.append(Row(f"{MODEL_NAMES.get(model, model)} · class {k} held out", cells, _settings(rs)))
    columns = [f"layer {i + 1} {c}" for i in range(width) for c in ("E_k size %", "E_k units in seen ensembles")]
    return StudyTable(
        "heldout-ensembles",
        TABLES["heldout-ensembles"],
        columns,
        rows,
        digits=1,
        note="no study values: the study shows these as figures",
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
            for metric in ("svcca", "cka", "dcor"):
                layers = values[metric]
                width = max(width, len(layers))
                cells: list[Cell | None] = [
                    compare(mean_std(v), study_value(("table10_similarity", dataset, metric, f"{a}_{b}", i)))
                    for i, v in enumerate(layers)
                ]
                label = f"{_name(dataset=dataset)} · {metric.upper() if metric != 'dcor' else 'dCor'} · {MODEL_NAMES[a]} vs {MODEL_NAMES[b]}"
                rows.append(Row(label, cells, _settings(per_model[a] + per_model[b])))
    note = "seed i of one model against seed i of the other; mean ± std over the pairs; the study gives no std"
    return StudyTable("table10", TABLES["table10"], [f"layer {i + 1}" for i in range(width)], rows, digits=2, note=note)


def _matrices(
    records: list[dict[str, Any]], suite_dir: Path, compute: bool, log: Callable[[str], None]
) -> list[Matrix]:
    out = []
    for (model, dataset, act_l1), rs in _by(_feeding(records, "fig12"), "model", "dataset", "act_l1"):
        mats = [m for m in (_layer_value(r, 0, ("jaccard",)) for r in rs) if m]
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
                )
            )
    return out


def _mean_matrix(mats: list[list[list[float | None]]]) -> list[list[float | None]]:
    n = len(mats[0])
    return [[mean_std([m[i][j] for m in mats if len(m) == n])["mean"] for j in range(n)] for i in range(n)]


# ---- the whole summary -----------------------------------------------------------------------------------
def build_summary(
    suite_dir: Path, *, compute_similarity: bool = True, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every table the suite's finished runs feed, plus the run states and failures."""
    from ffterm_core.suites.plan import read_plan

    suite_dir = Path(suite_dir)
    plan = read_plan(suite_dir) or {}
    records, runs = _records(suite_dir)
    probe_layer = plan.get("probe_layer")
    candidates: list[StudyTable | None] = [
        _accuracy_table(records, "table1", "table1_test_accuracy"),
        _layer_table(records, "table2", "table2_sparsity", ("sparsity",), "md"),
        _layer_table(records, "table3", "table3_ensemble_size_pct", ("ensemble_size_pct",), "md", digits=2),
        _layer_table(records, "table4", "table4_rho_plus", ("rho_plus", "mean"), "dm", note=UNIT_SPREAD),
        _layer_table(records, "table5", "table5_bias", ("bias", "mean"), "dm", note=UNIT_SPREAD),
        *_probe_tables(records, probe_layer),
        _heldout_ensembles(records),
        _layer_table(records, "table9", "table9_bp_act_l1_sparsity", ("sparsity",), "d"),
        _similarity_table(records, suite_dir, compute_similarity, log),
        _accuracy_table(records, "table11", "table11_l1_test_accuracy"),
        _layer_table(records, "table12", "table12_l1_sparsity", ("sparsity",), "md"),
        _layer_table(records, "table13", "table13_l1_ensemble_size_pct", ("ensemble_size_pct",), "md", digits=2),
    ]
    states: dict[str, int] = {}
    for r in runs:
        states[r["state"]] = states.get(r["state"], 0) + 1
    return {
        "suite": plan.get("name"),
        "description": plan.get("description"),
        "states": states,
        "failed": [{"run": r["dir"], "error": r["error"]} for r in runs if r["state"] == "failed"],
        "tables": [t for t in candidates if t is not None],
        "matrices": _matrices(records, suite_dir, compute_similarity, log),
    }


# ---- rendering ------------------------------------------------------------------------------------------
def cell_texts(cell: Cell | None, digits: int) -> tuple[str, str, str]:
    """(ours, study, deviation) as text; the deviation ends in ⚠ when off."""
    if cell is None:
        return MISSING, MISSING, ""
    ours = MISSING if cell.mean is None else f"{fmt(cell.mean, digits)} ± {fmt(cell.std, digits)} (n={cell.n})"
    if cell.study_mean is None:
        study = MISSING
    else:
        study = fmt(cell.study_mean, digits) + (
            f" ± {fmt(cell.study_std, digits)}" if cell.study_std is not None else ""
        )
    parts = []
    if cell.difference is not None and (cell.kind == "accuracy" or cell.deviation is None):
        parts.append(f"Δ {cell.difference:+.{digits}f}")
    if cell.deviation is not None:
        parts.append(f"{cell.deviation:+.1f}σ")
    dev = ", ".join(parts) + (" ⚠" if cell.off else "")
    return ours, study, dev


def shown_columns(table: StudyTable) -> list[int]:
    """The columns some run fills (e.g. Table 7 from a suite that held out two of the ten classes)."""
    return [c for c in range(len(table.columns)) if any(c < len(r.cells) and r.cells[c] for r in table.rows)]


def table_header(table: StudyTable) -> list[str]:
    """The column heads: per column ours / study / Δ, or just the column where the study has no values."""
    columns = [table.columns[c] for c in shown_columns(table)]
    if not table.has_study:
        return ["", *columns]
    return [""] + [f"{c} {part}" for c in columns for part in ("ours", "study", "Δ")]


def table_rows(table: StudyTable) -> list[list[str]]:
    rows = []
    for row in table.rows:
        cells = [row.label]
        for c in shown_columns(table):
            texts = cell_texts(row.cells[c] if c < len(row.cells) else None, table.digits)
            cells += list(texts) if table.has_study else [texts[0]]
        rows.append(cells)
    return rows


def to_markdown(summary: dict[str, Any]) -> str:
    states = ", ".join(f"{n} {s}" for s, n in sorted(summary["states"].items()))
    lines = [f"# Suite {summary['suite']}: {states}", ""]
    if summary.get("description"):
        lines += [summary["description"], ""]
    lines += [
        "Each cell: ours (mean ± std over n runs) | the study's value | the difference and the deviation in the "
        "study's standard deviations; ⚠ marks more than 3σ (accuracies: more than 0.01).",
        "",
    ]
    for t in summary["tables"]:
        lines += [f"## {t.title}", ""]
        if t.note:
            lines += [f"_{t.note}_", ""]
        header = table_header(t)
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(t)]
        lines.append("")
    for m in summary["matrices"]:
        lines += [f"## {m.title} (mean over {m.n} runs)", ""]
        lines += ["| | " + " | ".join(m.labels) + " |", "|" + "---|" * (len(m.labels) + 1)]
        for label, row in zip(m.labels, m.values):
            lines.append(f"| {label} | " + " | ".join(fmt(v, 2) for v in row) + " |")
        lines.append("")
    if summary["failed"]:
        lines += ["## Failed runs", ""] + [f"- `{f['run']}`: {f['error']}" for f in summary["failed"]] + [""]
    return "\n".join(lines)


CSV_FIELDS = ("table", "row", "column", "mean", "std", "n", "study_mean", "study_std", "difference", "deviation", "off")


def to_csv(summary: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    for t in summary["tables"]:
        for row in t.rows:
            for col, cell in zip(t.columns, row.cells):
                if cell is not None:
                    d = cell.to_dict()
                    writer.writerow([t.key, row.label, col, *(d[k] for k in CSV_FIELDS[3:])])
    return buf.getvalue()


def to_json(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: summary[k] for k in ("suite", "description", "states", "failed")},
        "tables": [t.to_dict() for t in summary["tables"]],
        "matrices": [vars(m) for m in summary["matrices"]],
    }
