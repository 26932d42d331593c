"""The Layers view: one table row per layer, held-out notes, per-layer accuracy and active units."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Static

from ffterm_core.formatting import fmt
from ffterm_core.records import LAYER_STATS, SPARSITY_CUTOFF
from ffterm_core.reports.run_report import class_label, class_names, stat_text
from ffterm_core.store.history import RunHistory

from ..colors import color_of, rich_color
from .base import Chart, View, lines, pct

LAYER_COLUMNS = [("layer", "layer"), ("acc", "acc"), *[(s.name, s.label) for s in LAYER_STATS], ("stab", "stab")]


class LayersView(View):
    """One row per layer: the last evaluated analysis, plus held-out and progress notes."""

    def compose(self) -> ComposeResult:
        yield Static(id="layers-note", classes="note")
        yield DataTable(id="layers-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="layers-heldout", classes="note")
        with Horizontal(id="layers-plots"):
            yield Chart(id="plot-layer-acc")
            yield Chart(id="plot-active")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in LAYER_COLUMNS:
            table.add_column(label, key=key)

    def draw(self, feed, feeds):
        opts = self.options
        table = self.query_one(DataTable)
        h = feed.history if feed else RunHistory()
        snap = h.latest_evaluated
        layers = (snap.layers or []) if snap else []
        n = max(h.num_layers, len(layers))
        if table.row_count != n:  # layer count changed (new run): rebuild rows, else update cells
            table.clear()
            for i in range(n):
                table.add_row(*([f"L{i + 1}"] + ["—"] * (len(LAYER_COLUMNS) - 1)), key=f"L{i + 1}")
        for i in range(n):
            layer = layers[i] if i < len(layers) else {}
            acc = snap.layer_accuracy[i] if snap and snap.layer_accuracy and i < len(snap.layer_accuracy) else None
            stab = h.stability_mean[i][-1] if i < len(h.stability_mean) and h.stability_mean[i] else None
            values: dict[str, str | Text] = {
                "layer": Text(f"L{i + 1}" + (" ◀" if i == opts.layer else ""), style=rich_color(color_of(i))),
                "acc": fmt(acc, pct=True),
            }
            for stat in LAYER_STATS:
                undefined = stat.needs_ensembles and layer and layer.get("ensembles") is None
                values[stat.name] = "undef" if undefined else stat_text(layer, stat, stat.view_digits, sep="±")
            values["stab"] = fmt(stab, 2)
            for key, value in values.items():
                table.update_cell(f"L{i + 1}", key, value, update_width=True)
        if n and table.cursor_row != opts.layer and opts.layer < n:
            table.move_cursor(row=opts.layer)
        note = self.query_one("#layers-note", Static)
        if snap is None:
            note.update("Per-layer analysis appears at the first evaluated snapshot.")
        else:
            acc = fmt(snap.test_accuracy, pct=True)
            note.update(
                Text.assemble(
                    ("Analysis at epoch ", "dim"),
                    (str(snap.epoch), "bold"),
                    (f"/{snap.total_epochs} on {snap.eval_samples or '?'} test images · ", "dim"),
                    ("test acc ", "dim"),
                    (acc, "bold"),
                    (
                        f"  (undef: sparsity < {SPARSITY_CUTOFF:g} · life: lifetime sparsity · "
                        "stab: ensembles' Jaccard vs previous eval)",
                        "dim",
                    ),
                )
            )
        self.query_one("#plot-layer-acc", Chart).draw(
            lambda plt: (
                plt.title(
                    "Accuracy % per layer (each layer's goodness alone)"
                    if any(v is not None for series in h.layer_accuracy for v in series)
                    else "Per-layer accuracy: none for backprop (one output head)"
                ),
                lines(
                    plt,
                    [
                        (*pct(h.series("layer_accuracy", i)), f"L{i + 1}", color_of(i))
                        for i in range(len(h.layer_accuracy))
                    ],
                ),
            )
        )
        self.query_one("#plot-active", Chart).draw(
            lambda plt: (
                plt.title("Active units per layer"),
                lines(
                    plt,
                    [(*h.series("active_units", i), f"L{i + 1}", color_of(i)) for i in range(h.num_layers)],
                ),
            )
        )
        held = self.query_one("#layers-heldout", Static)
        if snap is not None and snap.heldout:
            hd = snap.heldout
            k = hd.get("class")
            names = class_names(h.dataset)
            name = names[k] if isinstance(k, int) and k < len(names) else ""
            parts = [
                f"Held-out class {k} {name}: accuracy {fmt(hd.get('accuracy_heldout'), pct=True)} "
                f"(seen classes {fmt(hd.get('accuracy_seen'), pct=True)})"
            ]
            for i, hl in enumerate(hd.get("layers") or []):
                ens = hl.get("ensemble")
                shared = hl.get("shared_with_seen") or []
                most = sorted(((n, c) for c, n in enumerate(shared) if n), reverse=True)[:3]
                overlap = ", ".join(f"{class_label(h.dataset, c)} {n}" for n, c in most) or "none"
                parts.append(
                    f"  L{i + 1}: sparsity {fmt(hl.get('sparsity'))}, ensemble "
                    f"{'undefined' if ens is None else len(ens)} units, "
                    f"{fmt(hl.get('shared_with_seen_total'))} in seen ensembles (most: {overlap})"
                )
            held.update("\n".join(parts))
            held.display = True
        else:
            held.display = False
