"""The Compare view: several runs overlaid (FF vs BP/FF vs BP) and a table of their latest figures."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import DataTable

from ffterm_core.formatting import fmt
from ffterm_core.store.history import RunHistory

from ..colors import rich_color
from .base import Chart, View, lines, short_names, smooth

COMPARE_COLUMNS = [
    ("run", "run"),
    ("model", "model"),
    ("data", "data"),
    ("epoch", "epoch"),
    ("acc", "acc"),
    ("sparsity", "sparsity per layer"),
    ("ens", "ens % per layer"),
    ("rho", "ρ⁺ per layer"),
    ("bias", "bias per layer"),
    ("state", "state"),
]


class CompareView(View):
    """Overlay of several runs (FF vs BP/FF vs BP): accuracy and loss over training, per-layer figures."""

    def compose(self) -> ComposeResult:
        with Grid(classes="grid2x2"):
            yield Chart(id="cmp-acc")
            yield Chart(id="cmp-loss")
            yield Chart(id="cmp-sparsity")
            yield Chart(id="cmp-ens")
        yield DataTable(id="cmp-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#cmp-table", DataTable)
        for key, label in COMPARE_COLUMNS:
            table.add_column(label, key=key)

    def key(self, feed, feeds):
        opts = self.options
        return (tuple((f.id, f.history.count) for f in feeds), opts.layer, opts.smoothing, opts.log_y)

    def draw(self, feed, feeds):
        opts = self.options
        names = dict(zip((f.id for f in feeds), short_names([f.name for f in feeds])))

        def progress(h: RunHistory, xs: list[int]) -> list[float]:
            total = h.latest.total_epochs if h.latest and h.latest.total_epochs else max(xs or [1])
            return [100 * x / total for x in xs]

        def acc(plt):
            plt.title("Test accuracy % vs % of training")
            lines(
                plt,
                [
                    (
                        progress(f.history, f.history.series("test_accuracy")[0]),
                        [100 * v for v in f.history.series("test_accuracy")[1]],
                        names[f.id],
                        f.color,
                    )
                    for f in feeds
                ],
            )

        def loss(plt):
            plt.title(f"Loss of layer {opts.layer + 1} (CE for BP) vs % of training" + (" (log)" if opts.log_y else ""))
            series = []
            for f in feeds:
                h = f.history
                i = min(opts.layer, max(0, len(h.loss) - 1))
                xs, ys = smooth(h.series("loss", i), opts.smoothing) if h.loss else ([], [])
                series.append((progress(h, xs), ys, names[f.id], f.color))
            lines(plt, series, opts.log_y)

        def per_layer(key: str, title: str):
            def fn(plt):
                plt.title(title)
                series = []
                for f in feeds:
                    snap = f.history.latest_evaluated
                    layers = (snap.layers or []) if snap else []
                    xs = [i + 1 for i, d in enumerate(layers) if isinstance(d, dict) and d.get(key) is not None]
                    ys = [layers[x - 1][key] for x in xs]
                    series.append((xs, ys, names[f.id], f.color))
                lines(plt, series, marker="dot")
                plt.xticks(list(range(1, 1 + max((f.history.num_layers for f in feeds), default=1))))

            return fn

        self.query_one("#cmp-acc", Chart).draw(acc)
        self.query_one("#cmp-loss", Chart).draw(loss)
        self.query_one("#cmp-sparsity", Chart).draw(per_layer("sparsity", "Sparsity by layer (latest evaluation)"))
        self.query_one("#cmp-ens", Chart).draw(per_layer("ensemble_size_pct", "Ensemble size % by layer"))
        table = self.query_one("#cmp-table", DataTable)
        keys = [f"run{f.id}" for f in feeds]
        if [str(r.value) for r in table.rows] != keys:
            table.clear()
            for f in feeds:
                table.add_row(*(["—"] * len(COMPARE_COLUMNS)), key=f"run{f.id}")
        for f in feeds:
            h = f.history
            snap = h.latest_evaluated
            layers = (snap.layers or []) if snap else []

            def per(key: str, digits: int = 2, stat: bool = False, layers: list = layers) -> str:
                vals = []
                for d in layers:
                    v = (d.get(key) or {}).get("mean") if stat else d.get(key)
                    vals.append(fmt(v, digits))
                return "/".join(vals) or "—"

            row = {
                "run": Text(f.name, style=rich_color(f.color)),
                "model": h.model.upper(),
                "data": h.dataset,
                "epoch": f"{h.latest.epoch}/{h.latest.total_epochs}" if h.latest else "—",
                "acc": fmt(snap.test_accuracy if snap else None, pct=True),
                "sparsity": per("sparsity"),
                "ens": per("ensemble_size_pct", 1),
                "rho": per("rho_plus", stat=True),
                "bias": per("bias", stat=True),
                "state": f.state,
            }
            for key, value in row.items():
                table.update_cell(f"run{f.id}", key, value, update_width=True)
