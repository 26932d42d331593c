"""curves.csv: every per-epoch series of a run's history, one row per epoch.

Training series have a value at every epoch; evaluation series only at evaluated epochs (the cell
is empty elsewhere), as are layers not trained at an epoch (sequential FF). Columns, layers
numbered from 1:

  epoch, wall_time_s, samples_per_s, loss_L1…, g_pos_L1…, g_neg_L1…, test_accuracy,
  accuracy_L1…, then each series of `records.LAYER_SERIES` (sparsity_L1…, lifetime_sparsity_mean_L1…,
  ensemble_size_pct_L1…, active_units_L1…, rho_plus_mean_L1…, bias_mean_L1…), stability_mean_L1…,
  heldout_accuracy_seen, heldout_accuracy_heldout, stability_L1_class0…
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from ffterm_core.store.history import RunHistory
from ffterm_core.store.rundir import atomic_write_text


def curve_columns(history: RunHistory) -> dict[str, list[float | int | None]]:
    """Column name → one value per epoch of `history.epochs` (None where the series has no point)."""
    h = history
    layers = range(h.num_layers)
    cols: dict[str, list[float | int | None]] = {
        "epoch": list(h.epochs),
        "wall_time_s": list(h.wall_time),
        "samples_per_s": list(h.samples_per_s),
    }
    for name, series in (("loss", h.loss), ("g_pos", h.g_pos), ("g_neg", h.g_neg)):
        for i in layers:
            cols[f"{name}_L{i + 1}"] = list(series[i])
    row_of = {e: j for j, e in enumerate(h.epochs)}

    def on_epochs(values: Sequence[float | None]) -> list[float | None]:
        out: list[float | None] = [None] * len(h.epochs)
        for e, v in zip(h.eval_epochs, values):
            if e in row_of:
                out[row_of[e]] = v
        return out

    cols["test_accuracy"] = on_epochs(h.test_accuracy)
    per_layer = {"accuracy": h.layer_accuracy, **h.per_layer, "stability_mean": h.stability_mean}
    for column, series in per_layer.items():
        for i in layers:
            cols[f"{column}_L{i + 1}"] = on_epochs(series[i])
    cols["heldout_accuracy_seen"] = on_epochs(h.heldout_accuracy_seen)
    cols["heldout_accuracy_heldout"] = on_epochs(h.heldout_accuracy_heldout)
    for i in layers:
        for c, values in enumerate(h.stability[i]):
            cols[f"stability_L{i + 1}_class{c}"] = on_epochs(values)
    return cols


def curve_rows(history: RunHistory) -> list[dict[str, float | int | None]]:
    """The columns of :func:`curve_columns` as one dict per epoch."""
    cols = curve_columns(history)
    return [{name: values[j] for name, values in cols.items()} for j in range(len(history.epochs))]


def _cell(value: object) -> object:
    return "" if value is None else value


def to_csv(rows: Sequence[Mapping[str, object]]) -> str:
    """CSV text of dict rows; the header is the union of their keys, in first-seen order, and a key a
    row lacks (e.g. a layer a shallower run does not have) is an empty cell."""
    header: dict[str, None] = {}
    for row in rows:
        header.update(dict.fromkeys(row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(header), restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buf.getvalue()


def write_curves_csv(history: RunHistory, path: Path) -> Path:
    atomic_write_text(Path(path), to_csv(curve_rows(history)))
    return Path(path)
