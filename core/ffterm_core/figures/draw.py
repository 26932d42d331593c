"""The study's figures, drawn with matplotlib from plain data (lists of numbers, snapshot records).

Every function returns a `matplotlib.figure.Figure` built directly (no pyplot, so no global figure
state and no GUI backend); `save_figure` writes it as PNG (Agg) and SVG (text as paths, so the file
needs no fonts). matplotlib is imported inside the functions: importing this module is free, and
the commands that draw nothing never load it.

Figures (see docs/algorithms.md for what each quantity is):
  training_curves        loss and G⁺/G⁻ per layer over the epochs
  accuracy_curves        test accuracy and per-layer accuracy over the evaluations
  layer_bars             a per-layer figure (e.g. sparsity) as bars, one group per setting, error bars
                         across seeds (Fig. 2)
  class_profiles         a class's mean activation per unit, ensemble units marked (Fig. 1B / 4B)
  activation_map         per-sample activations grouped by class, ensemble units first (Fig. 1C / 4A)
  class_matrices         class × class heatmaps: shared units, Jaccard (Fig. 3B / 4C / 12)
  heatmaps               any matrices with row/column labels, e.g. layer-by-layer CKA (Fig. 13)
  weight_histograms      ρ⁺ and bias histograms per layer (Fig. 5)
  ensemble_curves        ensemble size and ensemble stability over the evaluations
  mean_curves            a series' mean over seeds with a ± std band, one line per setting
  heldout_ensembles      the unseen class's ensemble against the seen classes' ensembles
"""

from __future__ import annotations

import itertools
import math
import textwrap
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffterm_core.records import SPARSITY_CUTOFF

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

Num = float | int | None

# Okabe–Ito: distinguishable with the common colour-vision deficiencies
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
CLASS_COLORS = (  # matplotlib's tab10: one colour per class in the activation map's strip
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
ENSEMBLE_COLOR = "#D55E00"
OTHER_COLOR = "#6f6f6f"

_STYLE: dict[RcKeyType, Any] = {
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "svg.fonttype": "path",  # glyphs as paths: the SVG renders the same without the font installed
}

_UNDEFINED = f"undefined\n(sparsity < {SPARSITY_CUTOFF:g})"  # a panel of a layer without ensembles


def _style() -> AbstractContextManager[Any]:
    """The house style, for the duration of one figure's drawing (no global rcParams change)."""
    import matplotlib

    return matplotlib.rc_context(_STYLE)


def _new_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (call inside `_style()`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _settle(fig: Figure) -> None:
    """One more pass of the figure's layout. With fixed-aspect axes (imshow) beside colour bars and under a
    suptitle, constrained layout's first pass leaves rotated tick labels a few points below the figure's
    edge; the pass at drawing time then starts from this one and fits them."""
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)


def _wrap(text: str, inches: float, fontsize: float = 9.0) -> str:
    """`text` broken into lines that fit `inches` at `fontsize` points (a generous 0.6 em per character),
    so a long title wraps instead of running past the figure's edge."""
    return textwrap.fill(text, max(12, int(inches * 72 / (0.6 * fontsize))), break_on_hyphens=False)


def _fit_title(ax: Axes, text: str) -> None:
    """Set the axes' title, wrapped to the axes' width as laid out (a long title is not cut at the figure's edge)."""
    fig = ax.get_figure(root=True)
    assert fig is not None, "an axes drawn here always belongs to a figure"
    _settle(fig)
    ax.set_title(_wrap(text, ax.get_position().width * fig.get_figwidth(), _STYLE["axes.titlesize"]))


def _fit_suptitle(fig: Figure, text: str, fontsize: float = 9.0) -> None:
    fig.suptitle(_wrap(text, fig.get_figwidth() - 0.2, fontsize), fontsize=fontsize)


def _nan(values: Sequence[Num]) -> list[float]:
    """None/non-finite → NaN, so a line shows a gap there."""
    return [float(v) if v is not None and math.isfinite(v) else math.nan for v in values]


def _layer_color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _label(names: Sequence[str], c: int) -> str:
    name = names[c] if c < len(names) else str(c)
    return str(c) if name == str(c) else f"{c} {name}"


def _epochs_axis(*axes: Axes) -> None:
    """Whole epochs on the x axis."""
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _no_data(ax: Axes, text: str) -> None:
    """An empty panel saying why (its ticks hidden without touching axes it shares them with)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.tick_params(left=False, bottom=False, labelleft=False, labelbottom=False)
    for spine in ax.spines.values():
        spine.set_visible(False)


# ---- curves over the epochs -------------------------------------------------------------------
def training_curves(
    epochs: Sequence[int],
    loss: Sequence[Sequence[Num]],
    g_pos: Sequence[Sequence[Num]] = (),
    g_neg: Sequence[Sequence[Num]] = (),
    *,
    loss_label: str = "loss",
    xlabel: str = "epoch",
) -> Figure:
    """Training loss per layer, and mean goodness of positive (G⁺, solid) and negative (G⁻, dashed) data.

    One series per layer, aligned with `epochs`; None where a layer was not trained (sequential FF).
    Without goodness (BP) only the loss panel is drawn.
    """
    from matplotlib.lines import Line2D

    has_goodness = any(v is not None for s in (*g_pos, *g_neg) for v in s)
    with _style():
        fig = _new_figure(7.0 if has_goodness else 3.6, 2.6)
        axes = fig.subplots(1, 2 if has_goodness else 1, squeeze=False)[0]
        ax = axes[0]
        for i, s in enumerate(loss):
            if any(v is not None for v in s):
                ax.plot(epochs, _nan(s), color=_layer_color(i), lw=1.4, label=f"layer {i + 1}")
        ax.set(xlabel=xlabel, ylabel=loss_label, title="Training loss")
        if len(loss) > 1:
            ax.legend()
        if has_goodness:
            ax = axes[1]
            for i in range(max(len(g_pos), len(g_neg))):
                color = _layer_color(i)
                if i < len(g_pos):
                    ax.plot(epochs, _nan(g_pos[i]), color=color, lw=1.4, label=f"G⁺ layer {i + 1}")
                if i < len(g_neg):
                    ax.plot(epochs, _nan(g_neg[i]), color=color, lw=1.4, ls="--", label=f"G⁻ layer {i + 1}")
            ax.set(xlabel=xlabel, ylabel="mean goodness", title="Goodness of positive and negative data")
            # colour = layer, line style = positive/negative: a short legend instead of one entry per line
            layers = [Line2D([], [], color=_layer_color(i), lw=1.4, label=f"layer {i + 1}") for i in range(len(g_pos))]
            kinds = [
                Line2D([], [], color="black", lw=1.4, ls=ls, label=label) for ls, label in (("-", "G⁺"), ("--", "G⁻"))
            ]
            ax.legend(handles=[*layers, *kinds], loc="upper left", bbox_to_anchor=(1.0, 1.0))
        _epochs_axis(*axes)
        return fig


def accuracy_curves(
    eval_epochs: Sequence[int],
    test_accuracy: Sequence[Num],
    layer_accuracy: Sequence[Sequence[Num]] = (),
    *,
    seen_accuracy: Sequence[Num] | None = None,
    xlabel: str = "epoch",
) -> Figure:
    """Test accuracy (black) and each layer's accuracy (coloured) at every evaluation, in %.

    seen_accuracy: a held-out run's accuracy on the seen classes' images alone (grey), beside the overall
    accuracy, which counts the unseen class that can never be right."""
    with _style():
        fig = _new_figure(3.8, 2.6)
        ax = fig.add_subplot()
        # the net below the layers, dashed, so a layer that equals it (often layer 1) stays visible
        ax.plot(
            eval_epochs,
            [100 * v for v in _nan(test_accuracy)],
            color="black",
            lw=1.4,
            ls="--",
            marker="o",
            ms=2.5,
            zorder=1,
            label="net, all classes" if seen_accuracy is not None else "net",
        )
        if seen_accuracy is not None:
            ax.plot(
                eval_epochs,
                [100 * v for v in _nan(seen_accuracy)],
                color="#777777",
                lw=1.4,
                marker="s",
                ms=2.5,
                zorder=1,
                label="net, seen classes",
            )
        for i, s in enumerate(layer_accuracy):
            ax.plot(
                eval_epochs, [100 * v for v in _nan(s)], color=_layer_color(i), lw=1.1, zorder=2, label=f"layer {i + 1}"
            )
        ax.set(xlabel=xlabel, ylabel="test accuracy (%)", title="Test accuracy")
        ax.legend(loc="lower right")
        _epochs_axis(ax)
        return fig


def ensemble_curves(
    eval_epochs: Sequence[int],
    ensemble_size_pct: Sequence[Sequence[Num]],
    stability: Sequence[Sequence[Num]],
    *,
    xlabel: str = "epoch",
) -> Figure:
    """Mean ensemble size (% of the layer's units) and ensemble stability (mean Jaccard of each class's
    ensemble with the previous evaluation's) per layer; gaps where ensembles are undefined."""
    with _style():
        fig = _new_figure(7.0, 2.6)
        left, right = fig.subplots(1, 2)
        for i, s in enumerate(ensemble_size_pct):
            left.plot(eval_epochs, _nan(s), color=_layer_color(i), lw=1.4, marker="o", ms=2, label=f"layer {i + 1}")
        left.set(xlabel=xlabel, ylabel="ensemble size (% of units)", title="Ensemble size")
        for i, s in enumerate(stability):
            right.plot(eval_epochs, _nan(s), color=_layer_color(i), lw=1.4, marker="o", ms=2, label=f"layer {i + 1}")
        right.set(xlabel=xlabel, ylabel="Jaccard with previous evaluation", title="Ensemble stability", ylim=(0, 1.02))
        for ax in (left, right):
            if ax.lines:
                ax.legend()
        _epochs_axis(left, right)
        return fig


def mean_curves(
    groups: Mapping[str, tuple[Sequence[int], Sequence[Num], Sequence[Num]]],
    *,
    ylabel: str,
    title: str,
    xlabel: str = "epoch",
) -> Figure:
    """One line per group (its mean over seeds) with a ± std band: label → (epochs, means, stds)."""
    import numpy as np

    with _style():
        fig = _new_figure(4.6, 2.8)
        ax = fig.add_subplot()
        for g, (label, (x, mean, std)) in enumerate(groups.items()):
            color = PALETTE[g % len(PALETTE)]
            m, s = np.asarray(_nan(mean)), np.nan_to_num(np.asarray(_nan(std)))
            ax.plot(x, m, color=color, lw=1.5, label=label)
            ax.fill_between(x, m - s, m + s, color=color, alpha=0.2, lw=0)
        ax.set(xlabel=xlabel, ylabel=ylabel)
        if len(groups) > 1:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        _epochs_axis(ax)
        _fit_title(ax, title)
        return fig


# ---- per-layer bars -----------------------------------------------------------------------------
def _mean_std(value: Any) -> tuple[float, float]:
    """A number or a {"mean", "std"} mapping → (mean, std), NaN where undefined."""
    if isinstance(value, Mapping):
        mean, std = value.get("mean"), value.get("std")
    else:
        mean, std = value, None
    mean_f = float(mean) if isinstance(mean, (int, float)) and math.isfinite(mean) else math.nan
    std_f = float(std) if isinstance(std, (int, float)) and math.isfinite(std) else 0.0
    return mean_f, std_f


def layer_bars(
    groups: Mapping[str, Sequence[Any]],
    *,
    ylabel: str = "sparsity",
    title: str = "Sparsity per layer",
    ylim: tuple[float, float] | None = (0.0, 1.0),
    threshold: float | None = None,
) -> Figure:
    """Bars per layer, one bar per group (e.g. per model), with ± std error bars across seeds (Fig. 2).

    groups: label → one value per layer, each a number or a {"mean", "std"} mapping (a suite's
    summary cell). threshold: a dashed reference line (SPARSITY_CUTOFF for sparsity: ensembles are defined above it).
    """
    import numpy as np

    labels = list(groups)
    n_layers = max((len(v) for v in groups.values()), default=0)
    with _style():
        fig = _new_figure(max(3.2, 1.1 + 0.9 * n_layers * max(1, len(labels)) ** 0.6), 2.6)
        ax = fig.add_subplot()
        if not labels or n_layers == 0:
            _no_data(ax, "no layers")
            return fig
        width = 0.8 / len(labels)
        x = np.arange(n_layers)
        for g, label in enumerate(labels):
            stats = [_mean_std(v) for v in groups[label]] + [(math.nan, 0.0)] * (n_layers - len(groups[label]))
            means = [m for m, _ in stats]
            stds = [s for _, s in stats]
            has_err = any(s > 0 for s in stds)
            ax.bar(
                x + (g - (len(labels) - 1) / 2) * width,
                means,
                width * 0.92,
                yerr=stds if has_err else None,
                capsize=2.5 if has_err else 0,
                color=PALETTE[g % len(PALETTE)],
                error_kw={"elinewidth": 0.9, "capthick": 0.9},
                label=label,
            )
        if threshold is not None:
            ax.axhline(threshold, color="#555555", lw=0.8, ls="--")
        ax.set_xticks(x, [f"layer {i + 1}" for i in range(n_layers)])
        ax.set(ylabel=ylabel)
        if ylim is not None:
            ax.set_ylim(*ylim)
        if len(labels) > 1:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        _fit_title(ax, title)
        return fig


# ---- ensembles ----------------------------------------------------------------------------------
def class_profiles(
    class_mean_activation: Sequence[Sequence[float] | None],
    ensembles: Sequence[Sequence[int] | None] | None,
    class_names: Sequence[str],
    *,
    classes: Sequence[int] | None = None,
    factor: float = 2.0,
    layer: int | None = None,
    heldout: int | None = None,
) -> Figure:
    """Mean activation of every unit for the rows of a class, ensemble units in colour (Fig. 1B / 4B).

    class_mean_activation: C rows of n unit means (None for a class without rows); ensembles: C
    unit-index lists (None for an undefined one) or None when undefined. classes: which classes to draw
    (default all, as small multiples). The black line is each unit's own threshold, `factor` × the mean
    of the other units (the leave-one-out rule); a unit above it is in the ensemble. heldout: the
    unseen class, framed in red (Fig. 4A).
    """
    import numpy as np

    classes = list(range(len(class_mean_activation))) if classes is None else list(classes)
    cols = min(5, len(classes)) or 1
    rows = max(1, math.ceil(len(classes) / cols))
    panel_width = 1.6 if len(classes) > 1 else 4.0  # inches
    with _style():
        fig = _new_figure(panel_width * cols + 0.6, 1.45 * rows + 0.5)
        axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
        for ax in axes.flat[len(classes) :]:
            ax.set_visible(False)
        empty: set[Axes] = set()
        for ax, c in zip(axes.flat, classes):
            means = class_mean_activation[c] if c < len(class_mean_activation) else None
            ax.set_title(_label(class_names, c))
            if means is None:
                _no_data(ax, "no correct rows")
                empty.add(ax)
                continue
            m = np.asarray(_nan(means))
            members = np.zeros(m.size, dtype=bool)
            ens_c = ensembles[c] if ensembles is not None and c < len(ensembles) else None
            if ens_c is not None:
                members[[u for u in ens_c if 0 <= u < m.size]] = True
            # one line collection per group; a line per unit at least 0.5 pt wide so that 1000s of
            # units stay visible. Wide layers are embedded as an image in the SVG (axes and text stay
            # vector), which keeps the file small.
            units = np.arange(m.size)
            lw = max(0.5, 0.75 * panel_width * 72 / m.size)
            for mask, color in ((~members, OTHER_COLOR), (members, ENSEMBLE_COLOR)):
                ax.vlines(units[mask], 0, m[mask], colors=color, lw=lw, capstyle="butt", rasterized=m.size > 200)
            loo = factor * (np.nansum(m) - m) / max(m.size - 1, 1)
            ax.plot(units, loo, color="black", lw=0.6, drawstyle="steps-mid")
            ax.set_xlim(-0.5, m.size - 0.5)
            if ens_c is not None:  # in the title, where no bar can run into it
                ax.set_title(f"{_label(class_names, c)}  |E| = {int(members.sum())}")
            if c == heldout:
                ax.set_title(f"{_label(class_names, c)} (held out)\n|E| = {int(members.sum())}", color="#c00000")
                for spine in ax.spines.values():
                    spine.set(visible=True, color="#c00000", lw=1.2)
        for ax in axes[-1]:
            if ax not in empty:
                ax.set_xlabel("unit")
        for ax in axes[:, 0]:
            ax.set_ylabel("mean activation")
        where = f"layer {layer}: " if layer is not None else ""
        note = (
            "ensemble units in colour"
            if ensembles is not None
            else f"ensembles undefined (sparsity < {SPARSITY_CUTOFF:g})"
        )
        _fit_suptitle(fig, f"{where}mean activation per unit, by class ({note}; line: {factor:g}× leave-one-out mean)")
        return fig


def column_membership(
    amap: Mapping[str, Any], ensembles: Sequence[Sequence[int] | None] | None
) -> list[list[float]] | None:
    """(C, columns): the fraction of each activation-map column's units that are in class c's ensemble.

    None when ensembles are undefined or the map lacks its unit order; an undefined class gets a row of 0.
    """
    order, edges = amap.get("unit_order"), amap.get("col_edges")
    if ensembles is None or not order or not edges:
        return None
    out = []
    for e in ensembles:
        members = set(e or ())
        out.append([sum(u in members for u in order[a:b]) / max(b - a, 1) for a, b in itertools.pairwise(edges)])
    return out


def activation_map(
    matrix: Sequence[Sequence[float]],
    row_class: Sequence[int],
    col_class: Sequence[int],
    class_names: Sequence[str],
    *,
    n_units: int | None = None,
    layer: int | None = None,
    membership: Sequence[Sequence[float]] | None = None,
    heldout: int | None = None,
) -> Figure:
    """Activations of sample rows grouped by class, units reordered with each class's ensemble first
    (Fig. 1C / 4A). The strip above has one row per class (from `membership`, see
    :func:`column_membership`): a column is coloured in class c's row as far as its units are in E_c, so a
    unit shared by several ensembles shows in each. Without `membership`, one row marks the class whose
    ensemble dominates each column (`col_class`). n_units: the layer's width, when its units were averaged
    into fewer columns. heldout: the unseen class, its rows framed in red."""
    import numpy as np
    from matplotlib.colors import ListedColormap, to_rgb

    data = np.asarray(matrix, dtype=float)
    with _style():
        fig = _new_figure(6.4, 4.8)
        if data.ndim != 2 or data.size == 0:
            _no_data(fig.add_subplot(), "no rows to show")
            return fig
        rows = len(membership) if membership else 1
        strip_ax, ax = fig.subplots(2, 1, height_ratios=(max(1, rows // 2), 12), sharex=True)
        vmax = float(np.nanpercentile(data, 99)) or 1.0
        im = ax.imshow(data, aspect="auto", cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        fig.colorbar(im, ax=[strip_ax, ax], label="activation", shrink=0.8, pad=0.01)
        rc = np.asarray(row_class)
        starts: list[int] = [0, *(np.flatnonzero(np.diff(rc)) + 1).tolist()]
        ends = [*starts[1:], rc.size]
        for s in starts[1:]:
            ax.axhline(s - 0.5, color="white", lw=0.6)
        ax.set_yticks(
            [(s + e - 1) / 2 for s, e in zip(starts, ends)], [_label(class_names, int(rc[s])) for s in starts]
        )
        for s, e in zip(starts, ends):
            if heldout is not None and int(rc[s]) == heldout:
                for y in (s - 0.5, e - 0.5):
                    ax.axhline(y, color="red", lw=1.4)
        ax.set_xlabel(
            f"{n_units or data.shape[1]} units, each class's ensemble first, then the others"
            + (f" (averaged into {data.shape[1]} columns)" if n_units and n_units > data.shape[1] else "")
        )
        ax.set_ylabel("test samples, by class")
        if membership:
            m = np.clip(np.asarray(membership, dtype=float), 0.0, 1.0)
            rgb = np.array([to_rgb(CLASS_COLORS[c % len(CLASS_COLORS)]) for c in range(m.shape[0])])
            # white where no unit of the column is in E_c, the class's colour where all are
            img = 1.0 - m[:, :, None] * (1.0 - rgb[:, None, :])
            strip_ax.imshow(img, aspect="auto", interpolation="nearest")
            strip_ax.set_yticks(range(m.shape[0]), [str(c) for c in range(m.shape[0])], fontsize=5.5)
            strip_ax.set_ylabel("in E_c", fontsize=7)
            for label in strip_ax.get_yticklabels():
                if heldout is not None and label.get_text() == str(heldout):
                    label.set_color("red")
        else:
            colors = ListedColormap(["#e6e6e6", *CLASS_COLORS])
            strip = np.asarray(col_class, dtype=float)[None, :] + 1
            strip_ax.imshow(strip, aspect="auto", cmap=colors, vmin=0, vmax=len(CLASS_COLORS), interpolation="nearest")
            strip_ax.set_yticks([0], ["ensemble of"])
            for c in sorted({int(c) for c in col_class if c >= 0}):
                cols = np.flatnonzero(np.asarray(col_class) == c)
                if cols.size >= 2:  # a label wider than its block would run into the next one
                    strip_ax.text(cols.mean(), 0, str(c), ha="center", va="center", fontsize=6.5, color="white")
        strip_ax.tick_params(axis="x", bottom=False, labelbottom=False)
        for spine in strip_ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(axis="x", bottom=False, labelbottom=False)
        where = f"Layer {layer}: " if layer is not None else ""
        strip_ax.set_title(
            f"{where}activation map" + (f" (held-out class {heldout} in red)" if heldout is not None else "")
        )
        return fig


def class_matrices(
    panels: Sequence[tuple[str, Sequence[Sequence[Num]] | None, int]],
    class_names: Sequence[str],
    *,
    title: str | None = None,
    heldout: int | None = None,
) -> Figure:
    """Class × class heatmaps side by side, values written in the cells (Fig. 3B / 4C / 12).

    heldout: the unseen class, its row and column between red lines (Fig. 4C); blank cells are undefined.

    panels: (title, C×C matrix or None when undefined, decimals) each, e.g. ("Shared units", shared, 0)
    and ("Jaccard", jaccard, 2); Jaccard panels (decimals > 0) share the 0–1 colour scale, count
    panels run from 0 to their largest count.
    """
    n = max((len(m) for _, m, _ in panels if m is not None), default=0)
    labels = [_label(class_names, c) for c in range(n)]
    fig = heatmaps(panels, labels, labels, title=title, undefined=_UNDEFINED)
    if heldout is not None:
        for ax in fig.axes:
            if ax.images:
                for v in (heldout - 0.5, heldout + 0.5):
                    ax.axhline(v, color="red", lw=1.0)
                    ax.axvline(v, color="red", lw=1.0)
    return fig


def heatmaps(
    panels: Sequence[tuple[str, Sequence[Sequence[Num]] | None, int]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    title: str | None = None,
    undefined: str = "undefined",
) -> Figure:
    """Matrices side by side as heatmaps with their values in the cells (up to 12 × 12), e.g. linear
    CKA between the layers of two runs (Fig. 13), or :func:`class_matrices`.

    panels: (title, matrix or None, decimals) each; decimals > 0 means values in [0, 1] (one shared
    colour scale), 0 means counts (scale up to the panel's largest).
    """
    import numpy as np

    with _style():
        fig = _new_figure(3.5 * len(panels) + 0.2, 3.4)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (_, matrix, digits) in zip(axes, panels):
            if matrix is None:
                _no_data(ax, undefined)
                continue
            m = np.asarray(_nan_matrix(matrix))
            rows, cols = m.shape
            vmax = 1.0 if digits > 0 else max(1.0, float(np.nanmax(m)) if m.size else 1.0)
            im = ax.imshow(m, cmap="Blues", vmin=0, vmax=vmax)
            fig.colorbar(im, ax=ax, shrink=0.75, pad=0.02)
            ax.set_xticks(range(cols), col_labels[:cols], rotation=60, ha="right", rotation_mode="anchor")
            ax.set_yticks(range(rows), row_labels[:rows])
            ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if max(rows, cols) <= 12:
                for (i, j), v in np.ndenumerate(m):
                    if math.isfinite(v):
                        text = f"{v:.{digits}f}" if digits else f"{round(v)}"
                        color = "white" if v > 0.6 * vmax else "black"
                        ax.text(j, i, text, ha="center", va="center", fontsize=6, color=color)
        if title:
            _fit_suptitle(fig, title)
        for ax, (name, _, _) in zip(axes, panels):
            _fit_title(ax, name)
        _settle(fig)
        return fig


def _nan_matrix(matrix: Sequence[Sequence[Num]]) -> list[list[float]]:
    return [_nan(row) for row in matrix]


def weight_histograms(rho_plus: Sequence[Mapping[str, Any] | None], bias: Sequence[Mapping[str, Any] | None]) -> Figure:
    """Histograms of ρ⁺ (fraction of a unit's incoming weights that are positive) and of the biases,
    one column per layer (Fig. 5). Each entry is a stored histogram {"counts", "edges"} (optionally
    with "mean" and "std"), or None for a layer without weights."""
    n = max(len(rho_plus), len(bias), 1)
    with _style():
        fig = _new_figure(max(3.0, 2.3 * n), 3.6)
        axes = fig.subplots(2, n, squeeze=False)
        for row, (series, xlabel, color) in enumerate(
            ((rho_plus, "ρ⁺ (fraction of positive weights)", PALETTE[0]), (bias, "bias", PALETTE[1]))
        ):
            for i in range(n):
                ax = axes[row, i]
                summary = series[i] if i < len(series) else None
                hist = summary.get("hist", summary) if isinstance(summary, Mapping) else None
                if not hist or not hist.get("counts"):
                    _no_data(ax, "no weights")
                    continue
                edges, counts = hist["edges"], hist["counts"]
                ax.stairs(counts, edges, fill=True, color=color, alpha=0.85)
                ax.set_xlabel(xlabel)
                if i == 0:
                    ax.set_ylabel("units")
                if isinstance(summary, Mapping) and summary.get("mean") is not None:
                    ax.axvline(summary["mean"], color="black", lw=0.8, ls="--")
                if row == 0:
                    ax.set_title(f"layer {i + 1}")
        return fig


def heldout_ensembles(
    heldout_class: int,
    heldout_layers: Sequence[Mapping[str, Any]],
    seen_ensembles: Sequence[Sequence[Sequence[int] | None] | None],
    class_names: Sequence[str],
) -> Figure:
    """The unseen class k's ensemble against the seen classes', one panel per layer.

    Grey bars: each seen class's ensemble size |E_c|; coloured: the units it shares with E_k; the bar
    at k is |E_k| itself. heldout_layers: the held-out record per layer ("ensemble",
    "shared_with_seen"); seen_ensembles: the layer's per-class ensembles (None when undefined).
    """
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    n = max(len(heldout_layers), 1)
    k = heldout_class
    with _style():
        fig = _new_figure(max(3.4, 3.0 * n + 1.2), 3.0)
        axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
        for i, ax in enumerate(axes):
            rec = heldout_layers[i] if i < len(heldout_layers) else {}
            seen = seen_ensembles[i] if i < len(seen_ensembles) else None
            ek = rec.get("ensemble")
            ax.set_title(f"layer {i + 1}")
            if ek is None or seen is None:
                _no_data(ax, _UNDEFINED)
                continue
            ek_set = set(ek)
            C = len(seen)
            seen_sets = [set(e) if e is not None and c != k else set() for c, e in enumerate(seen)]
            sizes = np.array([len(e) for e in seen_sets], dtype=float)
            shared = np.array([len(ek_set & e) for e in seen_sets], dtype=float)
            x = np.arange(C)
            ax.bar(x, sizes, color="#cfcfcf", label="|E_c| (seen class)")
            ax.bar(x, shared, color=PALETTE[0], label="shared with E_k")
            ax.bar([k], [len(ek)], color=ENSEMBLE_COLOR, label="|E_k| (held out)")
            ax.set_xticks(
                x, [_label(class_names, c) for c in range(C)], rotation=60, ha="right", rotation_mode="anchor"
            )
            in_seen = ek_set & set().union(*seen_sets)
            ax.set_title(f"layer {i + 1}: |E_k| = {len(ek)}\n{len(in_seen)} in a seen ensemble", fontsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0].set_ylabel("units")
        drawn = [ax for ax in axes if ax.patches]
        if drawn:
            fig.legend(*drawn[0].get_legend_handles_labels(), loc="outside right upper")
        _fit_suptitle(fig, f"Held-out class {_label(class_names, k)}: its ensemble against the seen classes'")
        return fig


# ---- files --------------------------------------------------------------------------------------
def save_figure(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write `name`.png and `name`.svg into out_dir (created); return both paths.

    The SVG carries no date, so reports of the same data are byte-identical.
    """
    import matplotlib

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    with matplotlib.rc_context({**_STYLE, "svg.hashsalt": name}):
        fig.savefig(paths[0], format="png", metadata={"Software": None})
        fig.savefig(paths[1], format="svg", metadata={"Date": None, "Creator": None})
    return paths
