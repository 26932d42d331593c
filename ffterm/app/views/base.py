"""What every dashboard view is made of: the View base, its options, charts and text panels.

A View draws the run in focus (and, for Compare, every run) with the options the dashboard owns;
the dashboard binds its `options` and `frozen` reactives to each view's (`data_bind`) and asks the
visible view to `show` when the runs or the options change. `show` returns early when nothing the
view draws has changed. A view that raises while drawing shows one line saying so in its place, and
a chart or panel that raises while rendering one line in its own; the app goes on either way. Plots are Charts (plotext, redrawn only when their data change, with the
legend on a line of its own so it never covers the data); bar strips, the activation map and
matrices are TextPanels (rich Text sized at render time, so a resize costs no data work).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.containers import Container
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static
from textual_plotext import PlotextPlot

from ffterm_core.config import layerwise
from ffterm_core.records import LayerAnalysis
from ffterm_core.store.history import ema
from ffterm_core.store.snapshot import Snapshot

from ..colors import rich_color
from ..feeds import RunFeed

MAX_POINTS = 600


@dataclass(frozen=True)
class ViewOptions:
    """What the dashboard shows, chosen with keys: layer and class (0-based), EMA smoothing of the
    curves, log y axes, and Jaccard instead of shared-unit counts in the ensemble matrix."""

    layer: int = 0
    cls: int = 0
    smoothing: float = 0.0
    log_y: bool = False
    jaccard: bool = False


class View(Container):
    """A dashboard view. To add one: subclass View in a module of its own, `compose` its widgets,
    `draw` them from `feed` (the run in focus), `feeds` (every run) and `self.options`, and add a
    ViewSpec to `ffterm.app.views.VIEWS`. Override `key` when the view depends on less than the
    run's history and every option (it then skips more redraws)."""

    options: reactive[ViewOptions] = reactive(ViewOptions, init=False, repaint=False)
    frozen: reactive[bool] = reactive(False, init=False, repaint=False)

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._drawn: Any = None
        self._hidden: dict[Widget, bool] | None = None  # while failed: each child's display before

    def show(self, feed: RunFeed | None, feeds: list[RunFeed], force: bool = False) -> bool:
        """Draw unless frozen or unchanged (`force`: even then); return whether it drew."""
        if self.frozen and not force:
            return False
        key = self.key(feed, feeds)
        if not force and key == self._drawn:
            return False
        try:
            self.draw(feed, feeds)
        except NoMatches:  # children not mounted yet (the view was just created): draw on the next tick
            self._drawn = None
            return False
        except Exception as exc:  # a file's content no check foresaw, or a bug: never the whole app
            self._fail(exc)
            self._drawn = key
            return True
        self._recover()
        self._drawn = key
        return True

    def _fail(self, exc: Exception) -> None:
        """Hide the view's widgets behind one line naming the error (and the run's data drawn next)."""
        line = f"This view could not be drawn ({type(exc).__name__}: {str(exc)[:200]}); other views still work."
        if self._hidden is None:
            self._hidden = {child: child.display for child in self.children}
            for child in self._hidden:
                child.display = False
            self.mount(Static(Text(line, style="bold red"), classes="view-error"), before=0 if self.children else None)
        else:
            self.query_one(".view-error", Static).update(Text(line, style="bold red"))
        self.log.error(f"{type(self).__name__}: {line}")

    def _recover(self) -> None:
        if self._hidden is None:
            return
        self.query(".view-error").remove()
        for child, shown in self._hidden.items():
            child.display = shown
        self._hidden = None

    def key(self, feed: RunFeed | None, feeds: list[RunFeed]) -> Any:
        return (feed.id if feed else None, feed.history.count if feed else 0, self.options)

    def draw(self, feed: RunFeed | None, feeds: list[RunFeed]) -> None:
        raise NotImplementedError


# ---- plots ----------------------------------------------------------------------------------------
def thin(xs: Sequence[float], ys: Sequence[float], n: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """Keep at most n points, evenly strided, always including the last."""
    if len(xs) <= n:
        return list(xs), list(ys)
    step = len(xs) / n
    idx = sorted({min(len(xs) - 1, int(i * step)) for i in range(n)} | {len(xs) - 1})
    return [xs[i] for i in idx], [ys[i] for i in idx]


class _ChartPen:
    """The plot object handed to drawing functions: plotext, except that the title and the series
    labels are kept by the Chart, which draws them above the plot instead of over it."""

    def __init__(self, chart: Chart) -> None:
        self._chart = chart

    def title(self, label: str | None = None) -> None:
        self._chart.chart_title = label or ""

    def plot(self, *args: Any, label: str | None = None, **kw: Any) -> None:
        self._chart.add_legend(label, kw.get("color"), kw.get("marker"))
        self._chart.plt.plot(*args, **kw)

    def scatter(self, *args: Any, label: str | None = None, **kw: Any) -> None:
        self._chart.add_legend(label, kw.get("color"), kw.get("marker"))
        self._chart.plt.scatter(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chart.plt, name)


class Chart(PlotextPlot):
    """A plotext plot redrawn from a drawing function, only when asked, under a header of its own:
    the title, then the legend (`━ L1  ━ L2  • test`) on the same line when both fit, else on the
    next. Plotext draws its legend inside the plot area, over the data; this one never is."""

    DEFAULT_CSS = "Chart { width: 1fr; height: 1fr; min-height: 5; background: $surface; text-wrap: nowrap; }"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.chart_title = ""
        self.legend: list[tuple[str, str, str]] = []  # (label, colour, symbol), in drawing order

    def add_legend(self, label: str | None, color: str | None, marker: str | None) -> None:
        color = color or "white"
        if label and all((label, color) != entry[:2] for entry in self.legend):  # G⁺ and G⁻ of L1: one entry
            self.legend.append((label, color, "•" if marker == "dot" else "━"))

    def draw(self, fn: Callable[[Any], object]) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.xfrequency(3)
        plt.yfrequency(3)
        self.chart_title = ""
        self.legend = []
        fn(_ChartPen(self))
        self.refresh()

    def header(self, width: int) -> list[Text]:
        """The title and the legend, fitted to `width`: one line when both fit (the legend packed
        tighter if that makes them fit), else two."""
        title = Text(self.chart_title, style="bold")
        if not self.legend:
            return [_fit(title, width)]
        spaced, packed = self._legend(" ", "  "), self._legend("", " ")
        for legend in (spaced, packed):
            gap = width - title.cell_len - legend.cell_len
            if gap >= 3:
                return [title + Text(" " * gap) + legend]
        return [_fit(title, width), _fit(spaced if spaced.cell_len <= width else packed, width)]

    def _legend(self, after_symbol: str, between: str) -> Text:
        legend = Text()
        for i, (label, color, symbol) in enumerate(self.legend):
            legend.append((between if i else "") + symbol + after_symbol, style=rich_color(color))
            legend.append(label)
        return legend

    def render(self) -> Text:
        try:
            return self._render_plot()
        except Exception as exc:  # plotext on data no check foresaw: one line, not the app
            return _error_line("chart", exc)

    def _render_plot(self) -> Text:  # PlotextPlot.render, with the header's lines taken from the plot
        width, height = self.size.width, self.size.height
        head = self.header(width)
        rows = max(1, height - len(head))
        self.plt.plotsize(width, rows)
        self.plt._set_size(width, rows)
        self.plt.theme(self._get_plotext_theme_name(self.app.theme))
        out = Text("\n").join([*head, Text.from_ansi(self.plt.build())])
        out.no_wrap, out.overflow = True, "crop"
        return out


def _error_line(what: str, exc: Exception) -> Text:
    return Text(f"This {what} could not be drawn ({type(exc).__name__}: {str(exc)[:200]})", style="red")


def _fit(text: Text, width: int) -> Text:
    """One line of at most `width` cells, cut with an ellipsis."""
    text.truncate(width, overflow="ellipsis")
    return text


def lines(
    plt: Any,
    series: Sequence[tuple[Sequence[float], Sequence[float], str, str]],
    log_y: bool = False,
    marker: str = "braille",
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


def smooth(xy: tuple[list[int], list[float]], weight: float) -> tuple[list[int], list[float]]:
    xs, ys = xy
    return xs, [v for v in ema(ys, weight) if v is not None] if weight > 0 else ys


def pct(xy: tuple[list[int], list[float]]) -> tuple[list[int], list[float]]:
    return xy[0], [100 * v for v in xy[1]]


def stage_lines(plt: Any, snap: Snapshot | None) -> None:
    """Vertical markers where sequential FF moves to the next layer."""
    if snap is None or not layerwise(snap.model) or not snap.epochs_per_stage or snap.num_layers < 2:
        return
    for k in range(1, snap.num_layers):
        x = k * snap.epochs_per_stage
        if x < snap.epoch:
            plt.vertical_line(x + 0.5, color="gray")


def short_names(names: Sequence[str], width: int = 24) -> list[str]:
    """Names cut to `width` characters that still tell the runs apart: a long name keeps its start
    and, from the token where it first differs from its most alike neighbour, its end
    (`quick-ff-fashionm…221501`, not `quick-ff-fashionmnist-20`)."""
    out = []
    for i, name in enumerate(names):
        if len(name) <= width:
            out.append(name)
            continue
        shared = max((_shared_prefix(name, other) for j, other in enumerate(names) if j != i), default=0)
        rest = name[name.rfind("-", 0, shared) + 1 :] if shared else name  # from the token that differs
        head = width - len(rest) - 1
        if rest == name:
            out.append(name[: width - 1] + "…")
        elif head >= 4:
            out.append(name[:head] + "…" + rest)
        else:
            out.append("…" + rest[: width - 2] + "…")
    return out


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


# ---- text ---------------------------------------------------------------------------------------
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
            try:
                text = self._fn(*size)
            except Exception as exc:  # data no check foresaw: one line, not the app
                text = _error_line("panel", exc)
            self._cache = (size, text)
        return self._cache[1]


def layer_analysis(snap: Snapshot | None, layer: int) -> LayerAnalysis | None:
    """The analysis of one layer in an evaluated snapshot, or None."""
    if snap is None or not snap.layers or layer >= len(snap.layers):
        return None
    d = snap.layers[layer]
    return d if isinstance(d, dict) else None
