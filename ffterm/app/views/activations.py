"""The Activations view: one class's mean activation per unit and the class-grouped activation map."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult

from ffterm_core.records import SPARSITY_CUTOFF
from ffterm_core.reports.run_report import class_label, class_names
from ffterm_core.store.history import RunHistory

from ..render import activation_map, bar_strip
from .base import TextPanel, View, layer_analysis


class ActivationsView(View):
    """Per-unit mean activation of one class (ensemble in orange) and the class-grouped activation map."""

    def compose(self) -> ComposeResult:
        yield TextPanel(id="act-bars")
        yield TextPanel(id="act-map")

    def draw(self, feed, feeds):
        opts = self.options
        h = feed.history if feed else RunHistory()
        snap = h.latest_evaluated
        names = class_names(h.dataset)
        layer = layer_analysis(snap, opts.layer)
        cls = opts.cls
        if layer is None or snap is None:  # no layer without an evaluated snapshot
            msg = Text("Waiting for the first evaluated snapshot…", style="dim")
            self.query_one("#act-bars", TextPanel).set_renderer(lambda w, hh: msg)
            self.query_one("#act-map", TextPanel).set_renderer(lambda w, hh: Text(""))
            return
        means = layer.get("class_mean_activation") or []
        values = (means[cls] if cls < len(means) else None) or []  # None: no correctly classified image
        ens = layer.get("ensembles")
        members = frozenset(ens[cls] or ()) if ens is not None and cls < len(ens) else frozenset()
        ens_note = (
            f"ensemble undefined (sparsity < {SPARSITY_CUTOFF:g})"
            if ens is None
            else f"ensemble {len(members)} units (orange)"
        )
        title = (
            f"Layer {opts.layer + 1} · class {class_label(h.dataset, cls)} · mean activation per unit "
            f"({len(values)} units) · {ens_note} · epoch {snap.epoch}"
        )
        if values:
            bars = lambda w, hh: bar_strip(values, members, w, hh, title)  # noqa: E731
        else:
            empty = Text.assemble(
                (title + "\n", "bold"),
                ("no correctly classified test image of this class in this snapshot: no profile to show", "dim italic"),
            )
            bars = lambda w, hh: empty  # noqa: E731
        self.query_one("#act-bars", TextPanel).set_renderer(bars)
        amap = layer.get("activation_map") or {}
        matrix = amap.get("matrix") or []
        row_class = amap.get("row_class") or []
        col_class = amap.get("col_class") or []
        # the map does not depend on the class shown: switching class redraws only the bars
        self.query_one("#act-map", TextPanel).set_renderer(
            lambda w, hh: activation_map(matrix, row_class, col_class, w, hh, names), key=(id(amap), snap.epoch)
        )
