"""The E/I view: ρ⁺ and bias histograms of a layer and their means over the epochs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid

from ffterm_core.formatting import fmt_pm
from ffterm_core.store.history import RunHistory

from ..colors import color_of
from .base import Chart, View, layer_analysis, lines


class EIView(View):
    """ρ⁺ (fraction of positive incoming weights) and bias: histograms of the chosen layer, means over epochs."""

    def compose(self) -> ComposeResult:
        with Grid(classes="grid2x2"):
            yield Chart(id="plot-rho-hist")
            yield Chart(id="plot-bias-hist")
            yield Chart(id="plot-rho-mean")
            yield Chart(id="plot-bias-mean")

    def key(self, feed, feeds):
        opts = self.options
        return (feed.id if feed else None, feed.history.count if feed else 0, opts.layer)

    def draw(self, feed, feeds):
        opts = self.options
        h = feed.history if feed else RunHistory()
        snap = h.latest_evaluated
        layer = layer_analysis(snap, opts.layer)

        def hist(key: str, label: str, color: str):
            def fn(plt):
                stat = layer.get(key) if layer else None
                if not isinstance(stat, dict) or not stat.get("hist"):
                    plt.title(f"{label} · layer {opts.layer + 1}: waiting for an evaluated snapshot")
                    return
                counts = stat["hist"].get("counts") or []
                edges = stat["hist"].get("edges") or []
                centers = [(edges[i] + edges[i + 1]) / 2 for i in range(min(len(counts), len(edges) - 1))]
                plt.title(f"{label} · layer {opts.layer + 1}: {fmt_pm(stat, 3, sep='±')}")
                if centers:
                    width = (edges[-1] - edges[0]) / max(1, len(centers))
                    plt.bar(centers, counts[: len(centers)], color=color, width=width * 0.9)
                    plt.vertical_line(stat["mean"], color="white")
                    ticks = [edges[0] + (edges[-1] - edges[0]) * k / 4 for k in range(5)]
                    plt.xticks(ticks, [f"{t:.2g}" for t in ticks])

            return fn

        def means(name: str, label: str):
            def fn(plt):
                plt.title(f"{label} over epochs, per layer")
                lines(plt, [(*h.series(name, i), f"L{i + 1}", color_of(i)) for i in range(h.num_layers)])

            return fn

        self.query_one("#plot-rho-hist", Chart).draw(hist("rho_plus", "ρ⁺ (frac. w>0)", "green"))
        self.query_one("#plot-bias-hist", Chart).draw(hist("bias", "bias", "red"))
        self.query_one("#plot-rho-mean", Chart).draw(means("rho_plus_mean", "mean ρ⁺"))
        self.query_one("#plot-bias-mean", Chart).draw(means("bias_mean", "mean bias"))
