"""Figures laid out so that nothing is cut: rotated class labels, long titles and every axes' labels lie
inside the figure as drawn; the life raster says what its rows are; the run report defines its terms."""

from __future__ import annotations

import random

import pytest

from ffterm_core.analysis.ensemble_life import ClassLife
from ffterm_core.data.datasets import class_names
from ffterm_core.figures import beyond as BF
from ffterm_core.figures import draw as F
from ffterm_core.reports.run_report import render_markdown
from ffterm_core.store.snapshot import Snapshot

NAMES = class_names("fashionmnist")  # the real names: "2 Pullover" and "7 Sneaker" were the ones cut
TABLE13 = "Table 13: ensemble size (% of units) per layer with ℓ1 goodness"


def _drawn(fig):
    """Draw the figure as saving does (attaching an Agg canvas where it has none) and return its renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _inside(bbox, fig) -> bool:
    f = fig.bbox
    return bbox.x0 >= f.x0 - 0.5 and bbox.y0 >= f.y0 - 0.5 and bbox.x1 <= f.x1 + 0.5 and bbox.y1 <= f.y1 + 0.5


def _cut(fig) -> list[str]:
    """What is drawn past the figure's edge: axes (with their tick labels, labels and title), figure texts,
    the suptitle and figure legends, by name."""
    renderer = _drawn(fig)
    out = []
    for ax in fig.axes:
        if ax.get_visible() and not _inside(ax.get_tightbbox(renderer), fig):
            out.append(f"axes {ax.get_title()!r}")
    texts = [*fig.texts, *([fig._suptitle] if fig._suptitle is not None else [])]
    out += [f"text {t.get_text()!r}" for t in texts if t.get_text() and not _inside(t.get_window_extent(renderer), fig)]
    out += ["legend" for lg in fig.legends if not _inside(lg.get_window_extent(renderer), fig)]
    return out


def _tick_labels_cut(fig) -> list[str]:
    """Every drawn tick label (within its axis' view limits) whose extent leaves the figure."""
    renderer = _drawn(fig)
    out = []
    for ax in fig.axes:
        for axis, (lo, hi), i in ((ax.xaxis, ax.get_xlim(), 0), (ax.yaxis, ax.get_ylim(), 1)):
            lo, hi = min(lo, hi), max(lo, hi)
            drawn = [t for t in axis.get_ticklabels() if t.get_text() and lo <= t.get_position()[i] <= hi]
            out += [t.get_text() for t in drawn if not _inside(t.get_window_extent(renderer), fig)]
    return out


def _matrix(rng: random.Random, digits: int) -> list[list[float]]:
    return [[round(rng.random(), 2) if digits else rng.randint(0, 200) for _ in range(10)] for _ in range(10)]


@pytest.mark.parametrize("heldout", [None, 9])
def test_class_matrices_keep_every_rotated_class_label_inside_the_figure(heldout):
    rng = random.Random(0)
    fig = F.class_matrices(
        [("Shared units |E_c ∩ E_c'|", _matrix(rng, 0), 0), ("Jaccard", _matrix(rng, 2), 2)],
        NAMES,
        title="Layer 1",  # the suptitle is what pushed the labels out
        heldout=heldout,
    )
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert "2 Pullover" in labels and "7 Sneaker" in labels
    assert _tick_labels_cut(fig) == []
    assert _cut(fig) == []


def test_heldout_ensembles_keep_class_labels_inside_the_figure():
    seen = [[list(range(c, c + 20)) for c in range(9)] + [None]] * 3
    fig = F.heldout_ensembles(9, [{"ensemble": list(range(5, 40))}] * 3, seen, NAMES)
    assert _tick_labels_cut(fig) == [] and _cut(fig) == []


@pytest.mark.parametrize("groups", [1, 2])
def test_layer_bars_wrap_a_long_title_in_full(groups):
    data = {f"quick-ff-fashionmnist-l1 ({g + 1})": [{"mean": 20.0, "std": 1.0}, 12.0, 6.0] for g in range(groups)}
    fig = F.layer_bars(data, ylabel="ensemble size %", title=TABLE13, ylim=None)
    title = fig.axes[0].get_title()
    assert "\n" in title and title.replace("\n", " ") == TABLE13  # wrapped, every word kept
    assert _cut(fig) == []


def test_mean_curves_and_profiles_wrap_long_titles():
    curves = F.mean_curves(
        {"a": ([1, 2], [50.0, 60.0], [1.0, 1.0]), "quick-ff-fashionmnist-l1": ([1, 2], [40.0, 55.0], [2.0, 1.0])},
        ylabel="test accuracy (%)",
        title=TABLE13,
    )
    assert curves.axes[0].get_title().replace("\n", " ") == TABLE13
    one = F.class_profiles([[0.1, 0.5, 0.2] * 10], [[1, 4]], ["Ankle boot"], layer=1, heldout=0)
    assert "leave-one-out mean)" in one._suptitle.get_text()
    assert _cut(curves) == [] and _cut(one) == []


def test_wrap_keeps_short_text_and_breaks_long_text_at_spaces():
    assert F._wrap("Layer 1", 3.0) == "Layer 1"
    lines = F._wrap(TABLE13, 2.0).split("\n")
    assert len(lines) > 1 and " ".join(lines) == TABLE13
    assert all(len(line) <= int(2.0 * 72 / (0.6 * 9)) for line in lines)


def _life(epochs: list[int], members: list[frozenset[int] | None]) -> ClassLife:
    life = ClassLife()
    for e, m in zip(epochs, members):
        life.add(e, m)
    return life


def test_life_raster_labels_its_rows_with_unit_indices():
    epochs = [1, 2, 3, 4]
    classes = [
        _life(epochs, [frozenset({3, 17}), frozenset({3, 17, 250}), frozenset({17, 250}), frozenset({17, 250})]),
        _life(epochs, [None, frozenset({5}), frozenset({5, 9}), frozenset({5, 9})]),
        _life(epochs, [frozenset(), frozenset(), frozenset(), frozenset()]),  # never an ensemble: no panel
    ]
    fig = BF.life_raster_figure(classes, 0, NAMES)
    first, second, empty = fig.axes[:3]
    assert first.get_ylabel() and second.get_ylabel()  # what the rows are
    assert [t.get_text() for t in first.get_yticklabels()] == ["3", "17", "250"]  # rows 0, 1, 2: unit indices
    assert [t.get_text() for t in second.get_yticklabels()] == ["5", "9"]
    assert not empty.axison
    assert _cut(fig) == []


def test_run_report_defines_active_units_below_the_table_that_shows_them():
    snap = Snapshot(
        run_name="r",
        model="ff",
        dataset="fashionmnist",
        device="cpu",
        num_layers=1,
        kind="final",
        state="finished",
        test_accuracy=0.8,
        layers=[{"sparsity": 0.7, "active_units": 900}],
    )
    md = render_markdown(snap)
    header = md.index("| active units |")
    definition = md.index("Active units: the units with a non-zero activation on at least one of those correctly")
    assert header < definition


def test_profiles_keep_the_heldout_panel_title_inside_the_figure():
    means = [[0.1 + 0.01 * (u % 7) for u in range(1000)] for _ in range(10)]
    ens = [list(range(c * 50, c * 50 + 120)) for c in range(10)]
    fig = F.class_profiles(means, ens, NAMES, layer=1, heldout=9)  # the held-out class is the last panel
    assert "held out" in fig.axes[9].get_title()
    assert _cut(fig) == []
