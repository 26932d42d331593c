"""The Ensembles view: shared-units / Jaccard matrix, ensemble size and stability over the epochs, and for
the chosen layer and class the activation patterns and the unit × evaluation raster of its ensemble."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical

from ffterm_core.analysis.ensemble_life import EnsembleLife
from ffterm_core.reports.run_report import class_label, class_names, mean_stability_floor
from ffterm_core.store.history import RunHistory

from ..colors import color_of
from ..render import matrix_grid
from .base import Chart, TextPanel, View, layer_analysis, lines
from .life import PatternSource, patterns_text, raster_text


class EnsemblesView(View):
    """Shared-units / Jaccard matrix of the chosen layer; ensemble size % and stability over epochs; the
    chosen class's patterns and ensemble raster."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._lives: dict[int, EnsembleLife] = {}  # per run, updated incrementally from its history
        self._patterns = PatternSource(lambda line: self.notify(line, severity="warning", timeout=10))

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield TextPanel(id="ens-matrix")
            with Vertical(id="ens-plots"):
                yield Chart(id="plot-ens-size")
                yield Chart(id="plot-ens-stab")
                with Horizontal(id="ens-beyond"):
                    yield TextPanel(id="ens-patterns")
                    yield TextPanel(id="ens-life")

    def draw(self, feed, feeds):
        opts = self.options
        h = feed.history if feed else RunHistory()
        snap = h.latest_evaluated
        names = class_names(h.dataset)
        layer = layer_analysis(snap, opts.layer)
        mode = "Jaccard" if opts.jaccard else "Shared units"
        title = f"{mode} · L{opts.layer + 1}" + (f" · ep {snap.epoch}" if snap else "") + " (j)"
        matrix = None
        if layer is not None:
            matrix = layer.get("jaccard") if opts.jaccard else layer.get("shared_units")
        if layer is None:
            msg = Text(title + "\nWaiting for the first evaluated snapshot…", style="dim")
            self.query_one("#ens-matrix", TextPanel).set_renderer(lambda w, hh: msg)
        else:
            self.query_one("#ens-matrix", TextPanel).set_renderer(
                lambda w, hh: matrix_grid(matrix, names, opts.jaccard, w, opts.cls, title)
            )

        def size(plt):
            plt.title("Ensemble size % per layer")
            lines(
                plt,
                [(*h.series("ensemble_size_pct", i), f"L{i + 1}", color_of(i)) for i in range(h.num_layers)],
            )

        cls_name = class_label(h.dataset, opts.cls)

        def stability(plt):
            plt.title(f"Stability: Jaccard vs previous eval (layer means; L{opts.layer + 1} class {cls_name})")
            series = [
                (*h.series("stability_mean", i), f"L{i + 1} mean", color_of(i)) for i in range(len(h.stability_mean))
            ]
            series.append((*h.stability_series(opts.layer, opts.cls), f"L{opts.layer + 1} c{cls_name}", "white"))
            # what sampling alone costs (a finished run's split-half Jaccard): stability near it is no change
            floor = mean_stability_floor(layer_analysis(h.latest_evaluated, opts.layer))
            if floor is not None and h.eval_epochs:
                ends = [h.eval_epochs[0], h.eval_epochs[-1]]
                series.append((ends, [floor, floor], f"L{opts.layer + 1} split-half floor", "gray"))
            if lines(plt, series):
                plt.ylim(0, 1.05)

        self.query_one("#plot-ens-size", Chart).draw(size)
        self.query_one("#plot-ens-stab", Chart).draw(stability)
        self._draw_beyond(feed, h, cls_name)

    def _draw_beyond(self, feed, h: RunHistory, cls_name: str) -> None:
        opts = self.options
        life = self._lives.setdefault(feed.id, EnsembleLife()) if feed else EnsembleLife()
        life.update(h)
        class_life = life.of(opts.layer, opts.cls)
        title = f"Ensemble life · L{opts.layer + 1} class {cls_name}"
        self.query_one("#ens-life", TextPanel).set_renderer(lambda w, hh: raster_text(class_life, title, w, hh))
        layers = self._patterns.layers(feed.run_dir if feed else None)
        entries = layers[opts.layer] if opts.layer < len(layers) and layers[opts.layer] else []
        entry = next((e for e in entries if e.get("class") == opts.cls), None)
        self.query_one("#ens-patterns", TextPanel).set_renderer(lambda w, hh: patterns_text(entry, w))
