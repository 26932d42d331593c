"""Dashboard views. Each takes a RunFeed (and options) and draws it; none holds training state.

`View.show(feed, feeds, opts)` is called by the app's refresh tick for the visible tab only, and
returns early when nothing it draws has changed (history count, options, feed). Plots are
textual-plotext PlotextPlots (redrawn only when their data changes); bar strips, the activation map
and matrices are rich Text sized at render time, so a resize costs no data work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, Grid, Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from ffterm.core.formatting import fmt, fmt_pm
from ffterm.core.history import RunHistory, ema
from ffterm.core.report import class_label, class_names
from ffterm.core.snapshot import Snapshot

from .feeds import RunFeed, rich_color
from .render import activation_map, bar_strip, matrix_grid

LAYER_COLORS = ["cyan", "orange", "magenta", "green", "yellow", "blue", "red", "white"]
MAX_POINTS = 600


@dataclass(frozen=True)
class ViewOptions:
    layer: int = 0
    cls: int = 0
    smoothing: float = 0.0
    log_y: bool = False
    jaccard: bool = False


def layer_color(i: int) -> str:
    return LAYER_COLORS[i % len(LAYER_COLORS)]


def thin(xs: Sequence[float], ys: Sequence[float], n: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """Keep at most n points, evenly strided, always including the last."""
    if len(xs) <= n:
        return list(xs), list(ys)
    step = len(xs) / n
    idx = sorted({min(len(xs) - 1, int(i * step)) for i in range(n)} | {len(xs) - 1})
    return [xs[i] for i in idx], [ys[i] for i in idx]


class _Titled:
    """The plot object handed to drawing functions: plotext, with `title` kept by the Chart."""

    def __init__(self, chart: Chart) -> None:
        self._chart = chart

    def title(self, label: str | None = None) -> None:
        self._chart.chart_title = label or ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chart.plt, name)


class Chart(PlotextPlot):
    """A PlotextPlot that is redrawn from a drawing function, only when asked.

    The title is fitted to the width at render time (plotext drops a title that does not fit).
    """

    DEFAULT_CSS = "Chart { width: 1fr; height: 1fr; min-height: 5; }"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.chart_title = ""

    def draw(self, fn: Callable[[Any], None]) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.xfrequency(3)
        plt.yfrequency(3)
        self.chart_title = ""
        fn(_Titled(self))
        self.refresh()

    def render(self):  # type: ignore[override]
        width = self.size.width
        title = self.chart_title
        room = width - 8  # plotext drops a title wider than the canvas
        if len(title) > room:
            title = title[: max(0, room - 1)] + "…"
        self.plt.title(title)
        return super().render()


def _lines(
    plt: Any, series: list[tuple[list[float], list[float], str, str]], log_y: bool = False, marker: str = "braille"
) -> bool:
    """Plot (xs, ys, label, color) series; return whether anything was drawn."""
    drawn = False
    for xs, ys, label, color in series:
        if log_y:
            pairs = [(x, y) for x, y in zip(xs, ys) if y is not None and y > 0]
            xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        xs, ys = thin(xs, ys)
        if not xs:
            continue
        if len(xs) == 1:
            plt.scatter(xs, ys, label=label, color=color, marker="dot")
        else:
            plt.plot(xs, ys, label=label, color=color, marker=marker)
        drawn = True
    if log_y and drawn:
        plt.yscale("log")
    return drawn


def _smooth(xs: list[int], ys: list[float], weight: float) -> tuple[list[int], list[float]]:
    return xs, [v for v in ema(ys, weight) if v is not None] if weight > 0 else ys


def _stage_lines(plt: Any, snap: Snapshot | None) -> None:
    """Vertical markers where sequential FF moves to the next layer."""
    if snap is None or snap.model != "ff" or not snap.epochs_per_stage or snap.num_layers < 2:
        return
    for k in range(1, snap.num_layers):
        x = k * snap.epochs_per_stage
        if x < snap.epoch:
            plt.vertical_line(x + 0.5, color="gray")


class View(Container):
    """Base: remembers what it drew last to skip redundant redraws."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._drawn: Any = None

    def show(self, feed: RunFeed | None, feeds: list[RunFeed], opts: ViewOptions, force: bool = False) -> bool:
        key = self.key(feed, feeds, opts)
        if not force and key == self._drawn:
            return False
        try:
            self.draw(feed, feeds, opts)
        except NoMatches:  # children not mounted yet (the view was just created): draw on the next tick
            self._drawn = None
            return False
        self._drawn = key
        return True

    def key(self, feed: RunFeed | None, feeds: list[RunFeed], opts: ViewOptions) -> Any:
        return (feed.id if feed else None, feed.history.count if feed else 0, opts)

    def draw(self, feed: RunFeed | None, feeds: list[RunFeed], opts: ViewOptions) -> None:
        raise NotImplementedError


# ---- curves -------------------------------------------------------------------------------------
class CurvesView(View):
    """Loss per layer, G⁺/G⁻ per layer, accuracies, sparsity per layer — over epochs."""

    def compose(self) -> ComposeResult:
        with Grid(classes="grid2x2"):
            yield Chart(id="plot-loss")
            yield Chart(id="plot-goodness")
            yield Chart(id="plot-accuracy")
            yield Chart(id="plot-sparsity")

    def key(self, feed, feeds, opts):  # layer and class do not change these plots
        return (feed.id if feed else None, feed.history.count if feed else 0, opts.smoothing, opts.log_y)

    def draw(self, feed, feeds, opts):
        h = feed.history if feed else RunHistory()
        snap = h.latest
        scale = "log" if opts.log_y else "lin"
        smooth = f", ema {opts.smoothing:g}" if opts.smoothing else ""
        is_bp = h.model == "bp"

        def loss(plt):
            plt.title(("Cross-entropy" if is_bp else "Loss per layer") + f" ({scale}{smooth})")
            series = []
            for i in range(len(h.loss)):
                xs, ys = _smooth(*h.series("loss", i), opts.smoothing)
                series.append((xs, ys, "CE" if is_bp else f"L{i + 1}", layer_color(i)))
            _lines(plt, series, opts.log_y)
            _stage_lines(plt, snap)

        def goodness(plt):
            if is_bp:
                plt.title("G⁺ / G⁻: none for backprop")
                return
            plt.title(f"G⁺ line, G⁻ dots ({scale}{smooth})")
            series_pos, series_neg = [], []
            for i in range(len(h.g_pos)):
                xs, ys = _smooth(*h.series("g_pos", i), opts.smoothing)
                series_pos.append((xs, ys, f"L{i + 1} G⁺", layer_color(i)))
                xs, ys = _smooth(*h.series("g_neg", i), opts.smoothing)
                series_neg.append((xs, ys, f"L{i + 1} G⁻", layer_color(i)))
            _lines(plt, series_pos, opts.log_y)
            _lines(plt, series_neg, opts.log_y, marker="dot")
            _stage_lines(plt, snap)

        def accuracy(plt):
            best = h.best_accuracy()
            title = "Test accuracy %"
            if h.test_accuracy and h.test_accuracy[-1] is not None:
                title += f": {100 * h.test_accuracy[-1]:.2f}"
            if best:
                title += f" (best {100 * best[1]:.2f} @{best[0]})"
            plt.title(title)
            series = [(*_pct(h.series("test_accuracy")), "test", "white")]
            for i in range(len(h.layer_accuracy)):
                series.append((*_pct(h.series("layer_accuracy", i)), f"L{i + 1}", layer_color(i)))
            if any(v is not None for v in h.heldout_accuracy_heldout):
                series.append((*_pct(h.series("heldout_accuracy_heldout")), "held-out", "red"))
            _lines(plt, series)

        def sparsity(plt):
            plt.title("Sparsity per layer (≥0.5: ensembles)")
            series = [(*h.series("sparsity", i), f"L{i + 1}", layer_color(i)) for i in range(len(h.sparsity))]
            if _lines(plt, series):
                plt.horizontal_line(0.5, color="gray")

        self.query_one("#plot-loss", Chart).draw(loss)
        self.query_one("#plot-goodness", Chart).draw(goodness)
        self.query_one("#plot-accuracy", Chart).draw(accuracy)
        self.query_one("#plot-sparsity", Chart).draw(sparsity)


def _pct(xy: tuple[list[int], list[float]]) -> tuple[list[int], list[float]]:
    return xy[0], [100 * v for v in xy[1]]


# ---- per-layer table ----------------------------------------------------------------------------
LAYER_COLUMNS = [
    ("layer", "layer"),
    ("acc", "acc"),
    ("sparsity", "sparsity"),
    ("zero", "0-rows"),
    ("ens", "ens %"),
    ("active", "active"),
    ("rho", "ρ⁺ μ±σ"),
    ("bias", "bias μ±σ"),
    ("stab", "stab"),
    ("p05", "p>.05"),
]


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

    def draw(self, feed, feeds, opts):
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
            values = {
                "layer": Text(f"L{i + 1}" + (" ◀" if i == opts.layer else ""), style=rich_color(layer_color(i))),
                "acc": fmt(acc, pct=True),
                "sparsity": fmt(layer.get("sparsity")),
                "zero": fmt(layer.get("sparsity_ignored_rows")),
                "ens": "undef" if layer and layer.get("ensembles") is None else fmt(layer.get("ensemble_size_pct"), 1),
                "active": fmt(layer.get("active_units")),
                "rho": fmt_pm(layer.get("rho_plus"), 2, sep="±"),
                "bias": fmt_pm(layer.get("bias"), 2, sep="±"),
                "stab": fmt(stab, 2),
                "p05": fmt(layer.get("n_units_p_gt_0_05")),
            }
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
                    ("  (undef: sparsity < 0.5 · stab: ensembles' Jaccard vs previous eval)", "dim"),
                )
            )
        self.query_one("#plot-layer-acc", Chart).draw(
            lambda plt: (
                plt.title(
                    "Accuracy % per layer (each layer's goodness alone)"
                    if any(v is not None for series in h.layer_accuracy for v in series)
                    else "Per-layer accuracy: none for backprop (one output head)"
                ),
                _lines(
                    plt,
                    [
                        (*_pct(h.series("layer_accuracy", i)), f"L{i + 1}", layer_color(i))
                        for i in range(len(h.layer_accuracy))
                    ],
                ),
            )
        )
        self.query_one("#plot-active", Chart).draw(
            lambda plt: (
                plt.title("Active units per layer"),
                _lines(
                    plt,
                    [(*h.series("active_units", i), f"L{i + 1}", layer_color(i)) for i in range(len(h.active_units))],
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


# ---- activations --------------------------------------------------------------------------------
class TextPanel(Widget):
    """Renders a function of its current size (so resizing redraws without new data)."""

    DEFAULT_CSS = "TextPanel { width: 1fr; height: 1fr; text-wrap: nowrap; text-overflow: clip; }"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._fn: Callable[[int, int], Text] | None = None
        self._key: Any = None
        self._cache: tuple[tuple[int, int], Text] | None = None

    def set_renderer(self, fn: Callable[[int, int], Text], key: Any = None) -> None:
        """Draw with `fn(width, height)`; with a `key` equal to the last one, keep what is drawn."""
        if key is not None and key == self._key:
            return
        self._fn, self._key, self._cache = fn, key, None
        self.refresh()

    def render(self) -> Text:
        if self._fn is None or self.size.width == 0:
            return Text("")
        size = (self.size.width, self.size.height)
        if self._cache is None or self._cache[0] != size:  # built once per data and size, not per paint
            self._cache = (size, self._fn(*size))
        return self._cache[1]


class ActivationsView(View):
    """Per-unit mean activation of one class (ensemble in orange) and the class-grouped activation map."""

    def compose(self) -> ComposeResult:
        yield TextPanel(id="act-bars")
        yield TextPanel(id="act-map")

    def draw(self, feed, feeds, opts):
        h = feed.history if feed else RunHistory()
        snap = h.latest_evaluated
        names = class_names(h.dataset)
        layer = _layer_dict(snap, opts.layer)
        cls = opts.cls
        if layer is None:
            msg = Text("Waiting for the first evaluated snapshot…", style="dim")
            self.query_one("#act-bars", TextPanel).set_renderer(lambda w, hh: msg)
            self.query_one("#act-map", TextPanel).set_renderer(lambda w, hh: Text(""))
            return
        means = layer.get("class_mean_activation") or []
        values = (means[cls] if cls < len(means) else None) or []  # None: no correctly classified image
        ens = layer.get("ensembles")
        members = frozenset(ens[cls]) if ens is not None and cls < len(ens) else frozenset()
        ens_note = "ensemble undefined (sparsity < 0.5)" if ens is None else f"ensemble {len(members)} units (orange)"
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


def _layer_dict(snap: Snapshot | None, layer: int) -> dict[str, Any] | None:
    if snap is None or not snap.layers or layer >= len(snap.layers):
        return None
    d = snap.layers[layer]
    return d if isinstance(d, dict) else None


# ---- ensembles ----------------------------------------------------------------------------------
class EnsemblesView(View):
    """Shared-units / Jaccard matrix of the chosen layer; ensemble size % and stability over epochs."""

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield TextPanel(id="ens-matrix")
            with Vertical(id="ens-plots"):
                yield Chart(id="plot-ens-size")
                yield Chart(id="plot-ens-stab")

    def draw(self, feed, feeds, opts):
        h = feed.history if feed else RunHistory()
        snap = h.latest_evaluated
        names = class_names(h.dataset)
        layer = _layer_dict(snap, opts.layer)
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
            _lines(
                plt,
                [
                    (*h.series("ensemble_size_pct", i), f"L{i + 1}", layer_color(i))
                    for i in range(len(h.ensemble_size_pct))
                ],
            )

        cls_name = class_label(h.dataset, opts.cls)

        def stability(plt):
            plt.title(f"Stability: Jaccard vs previous eval (layer means; L{opts.layer + 1} class {cls_name})")
            series = [
                (*h.series("stability_mean", i), f"L{i + 1} mean", layer_color(i)) for i in range(len(h.stability_mean))
            ]
            series.append((*h.stability_series(opts.layer, opts.cls), f"L{opts.layer + 1} c{cls_name}", "white"))
            if _lines(plt, series):
                plt.ylim(0, 1.05)

        self.query_one("#plot-ens-size", Chart).draw(size)
        self.query_one("#plot-ens-stab", Chart).draw(stability)


# ---- excitation / inhibition --------------------------------------------------------------------
class EIView(View):
    """ρ⁺ (fraction of positive incoming weights) and bias: histograms of the chosen layer, means over epochs."""

    def compose(self) -> ComposeResult:
        with Grid(classes="grid2x2"):
            yield Chart(id="plot-rho-hist")
            yield Chart(id="plot-bias-hist")
            yield Chart(id="plot-rho-mean")
            yield Chart(id="plot-bias-mean")

    def key(self, feed, feeds, opts):
        return (feed.id if feed else None, feed.history.count if feed else 0, opts.layer)

    def draw(self, feed, feeds, opts):
        h = feed.history if feed else RunHistory()
        snap = h.latest_evaluated
        layer = _layer_dict(snap, opts.layer)

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
                _lines(plt, [(*h.series(name, i), f"L{i + 1}", layer_color(i)) for i in range(h.num_layers)])

            return fn

        self.query_one("#plot-rho-hist", Chart).draw(hist("rho_plus", "ρ⁺ (frac. w>0)", "green"))
        self.query_one("#plot-bias-hist", Chart).draw(hist("bias", "bias", "red"))
        self.query_one("#plot-rho-mean", Chart).draw(means("rho_plus_mean", "mean ρ⁺"))
        self.query_one("#plot-bias-mean", Chart).draw(means("bias_mean", "mean bias"))


# ---- compare ------------------------------------------------------------------------------------
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

    def key(self, feed, feeds, opts):
        return (tuple((f.id, f.history.count) for f in feeds), opts.layer, opts.smoothing, opts.log_y)

    def draw(self, feed, feeds, opts):
        def progress(h: RunHistory, xs: list[int]) -> list[float]:
            total = h.latest.total_epochs if h.latest and h.latest.total_epochs else max(xs or [1])
            return [100 * x / total for x in xs]

        def acc(plt):
            plt.title("Test accuracy % vs % of training")
            _lines(
                plt,
                [
                    (
                        progress(f.history, f.history.series("test_accuracy")[0]),
                        [100 * v for v in f.history.series("test_accuracy")[1]],
                        f.name[:24],
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
                i = 0 if h.model == "bp" else min(opts.layer, max(0, len(h.loss) - 1))
                xs, ys = _smooth(*h.series("loss", i), opts.smoothing) if h.loss else ([], [])
                series.append((progress(h, xs), ys, f.name[:24], f.color))
            _lines(plt, series, opts.log_y)

        def per_layer(key: str, title: str):
            def fn(plt):
                plt.title(title)
                series = []
                for f in feeds:
                    snap = f.history.latest_evaluated
                    layers = (snap.layers or []) if snap else []
                    xs = [i + 1 for i, d in enumerate(layers) if isinstance(d, dict) and d.get(key) is not None]
                    ys = [layers[x - 1][key] for x in xs]
                    series.append((xs, ys, f.name[:24], f.color))
                _lines(plt, series, marker="dot")
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
