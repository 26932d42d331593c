"""The Curves view: loss, goodness, accuracy and sparsity per layer over the epochs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid

from ffterm_core.config import goodness_model
from ffterm_core.records import SPARSITY_CUTOFF
from ffterm_core.store.history import RunHistory

from ..colors import color_of
from .base import Chart, View, lines, pct, smooth, stage_lines


class CurvesView(View):
    """Loss per layer, G⁺/G⁻ per layer, accuracies, sparsity per layer — over epochs."""

    def compose(self) -> ComposeResult:
        with Grid(classes="grid2x2"):
            yield Chart(id="plot-loss")
            yield Chart(id="plot-goodness")
            yield Chart(id="plot-accuracy")
            yield Chart(id="plot-sparsity")

    def key(self, feed, feeds):
        opts = self.options  # layer and class do not change these plots
        return (feed.id if feed else None, feed.history.count if feed else 0, opts.smoothing, opts.log_y)

    def draw(self, feed, feeds):
        opts = self.options
        h = feed.history if feed else RunHistory()
        snap = h.latest
        scale = "log" if opts.log_y else "lin"
        ema_note = f", ema {opts.smoothing:g}" if opts.smoothing else ""
        is_bp = not goodness_model(h.model)

        def loss(plt):
            plt.title(("Cross-entropy" if is_bp else "Loss per layer") + f" ({scale}{ema_note})")
            series = []
            for i in range(len(h.loss)):
                xs, ys = smooth(h.series("loss", i), opts.smoothing)
                series.append((xs, ys, "CE" if is_bp else f"L{i + 1}", color_of(i)))
            lines(plt, series, opts.log_y)
            stage_lines(plt, snap)

        def goodness(plt):
            if is_bp:
                plt.title("G⁺ / G⁻: none for backprop")
                return
            plt.title(f"G⁺ line, G⁻ dots ({scale}{ema_note})")
            series_pos, series_neg = [], []
            for i in range(len(h.g_pos)):
                xs, ys = smooth(h.series("g_pos", i), opts.smoothing)
                series_pos.append((xs, ys, f"L{i + 1}", color_of(i)))
                xs, ys = smooth(h.series("g_neg", i), opts.smoothing)
                series_neg.append((xs, ys, f"L{i + 1}", color_of(i)))
            lines(plt, series_pos, opts.log_y)
            lines(plt, series_neg, opts.log_y, marker="dot")
            stage_lines(plt, snap)

        def accuracy(plt):
            best = h.best_accuracy()
            title = "Test accuracy %"
            if h.test_accuracy and h.test_accuracy[-1] is not None:
                title += f": {100 * h.test_accuracy[-1]:.2f}"
            if best:
                title += f" (best {100 * best[1]:.2f} @{best[0]})"
            plt.title(title)
            series = [(*pct(h.series("test_accuracy")), "test", "white")]
            for i in range(len(h.layer_accuracy)):
                series.append((*pct(h.series("layer_accuracy", i)), f"L{i + 1}", color_of(i)))
            if any(v is not None for v in h.heldout_accuracy_heldout):
                series.append((*pct(h.series("heldout_accuracy_heldout")), "held-out", "red"))
            lines(plt, series)

        def sparsity(plt):
            plt.title(f"Sparsity per layer (≥{SPARSITY_CUTOFF:g}: ensembles)")
            series = [(*h.series("sparsity", i), f"L{i + 1}", color_of(i)) for i in range(h.num_layers)]
            if lines(plt, series):
                plt.horizontal_line(SPARSITY_CUTOFF, color="gray")

        self.query_one("#plot-loss", Chart).draw(loss)
        self.query_one("#plot-goodness", Chart).draw(goodness)
        self.query_one("#plot-accuracy", Chart).draw(accuracy)
        self.query_one("#plot-sparsity", Chart).draw(sparsity)
