"""ffterm_core.figures.draw and ffterm_core.reports.html_page: what each figure draws, valid PNG/SVG files, a
self-contained HTML page."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib.colors import to_hex
from PIL import Image

from ffterm_core.figures import draw as F
from ffterm_core.reports.html_page import HtmlPage
from ffterm_core.store.history import RunHistory
from ffterm_core.store.rundir import read_snapshots

DATA = Path(__file__).parent / "data"
NAMES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    with Image.open(path) as im:
        im.load()
        assert im.width > 200 and im.height > 100
        # not a blank canvas: a drawn figure has many distinct colours
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 20


def assert_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg", path
    assert len(list(root.iter())) > 20  # drawn elements, not an empty document


def _bars(ax):
    from matplotlib.patches import Rectangle

    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_save_figure_writes_valid_png_and_svg(tmp_path):
    fig = F.accuracy_curves([1, 2, 3], [0.5, 0.7, None], [[0.4, 0.6, 0.65]])
    paths = F.save_figure(fig, tmp_path / "figs", "accuracy")
    assert [p.name for p in paths] == ["accuracy.png", "accuracy.svg"]
    assert_png(paths[0])
    assert_svg(paths[1])
    # no date in the SVG: the same figure saved twice gives the same bytes
    again = F.save_figure(
        F.accuracy_curves([1, 2, 3], [0.5, 0.7, None], [[0.4, 0.6, 0.65]]), tmp_path / "b", "accuracy"
    )
    assert again[1].read_bytes() == paths[1].read_bytes()


def test_figures_use_no_pyplot_state():
    import sys

    F.training_curves([1, 2], [[0.5, 0.4]])
    assert "matplotlib.pyplot" not in sys.modules


def test_accuracy_curves_plot_percentages_with_gaps():
    fig = F.accuracy_curves([3, 6, 9], [0.5, None, 0.75], [[0.4, 0.5, 0.6], [0.45, 0.55, 0.7]])
    ax = fig.axes[0]
    net = next(line for line in ax.lines if line.get_label() == "net")
    y = net.get_ydata()
    assert y[0] == 50.0 and y[2] == 75.0 and y[1] != y[1]  # NaN gap where the accuracy is missing
    assert [line.get_label() for line in ax.lines] == ["net", "layer 1", "layer 2"]
    # the net is dashed and drawn below the layers, so a layer equal to it stays visible
    assert net.get_linestyle() == "--" and net.get_zorder() < ax.lines[1].get_zorder()
    assert ax.get_ylabel() == "test accuracy (%)"


def test_accuracy_curves_show_the_seen_class_accuracy_of_a_heldout_run():
    fig = F.accuracy_curves([1, 2], [0.6, 0.7], [[0.6, 0.7]], seen_accuracy=[0.66, 0.78])
    lines = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].lines}
    assert lines["net, all classes"] == [60.0, 70.0]
    assert lines["net, seen classes"] == pytest.approx([66.0, 78.0])


def test_training_curves_bp_has_only_the_loss_panel():
    bp = F.training_curves([1, 2, 3], [[0.9, 0.5, 0.3]], [[None, None, None]], [[None, None, None]])
    assert len(bp.axes) == 1
    ff = F.training_curves([1, 2], [[0.5, None], [None, 0.4]], [[4.0, None], [None, 5.0]], [[2.0, None], [None, 1.0]])
    assert len(ff.axes) == 2
    labels = [line.get_label() for line in ff.axes[1].lines]
    assert labels == ["G⁺ layer 1", "G⁻ layer 1", "G⁺ layer 2", "G⁻ layer 2"]
    assert ff.axes[1].lines[1].get_linestyle() == "--"


def test_mean_curves_draw_a_band_of_one_std():
    fig = F.mean_curves(
        {"FF": ([1, 2], [80.0, 85.0], [2.0, 1.0]), "BP": ([1, 2], [70.0, None], [0.0, None])},
        ylabel="test accuracy (%)",
        title="Test accuracy",
    )
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["FF", "BP"]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert min(band) == 78.0 and max(band) == 86.0


def test_layer_bars_heights_and_error_bars_across_seeds():
    fig = F.layer_bars(
        {"FF": [{"mean": 0.8, "std": 0.05}, {"mean": 0.7, "std": 0.1}], "BP": [0.3, None]}, threshold=0.5
    )
    ax = fig.axes[0]
    bars = _bars(ax)
    assert [round(b.get_height(), 6) for b in bars[:2]] == [0.8, 0.7]
    assert bars[2].get_height() == pytest.approx(0.3) and bars[3].get_height() != bars[3].get_height()
    # FF's error bars span mean ± std
    segments = [c for c in ax.collections if c.get_segments()]
    spans = sorted(round(abs(s[1][1] - s[0][1]), 6) for c in segments for s in c.get_segments())
    assert spans == [0.1, 0.2]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer 1", "layer 2"]


def test_class_profiles_colour_the_ensemble_units():
    means = [[0.1, 0.9, 0.0, 0.2], [0.5, 0.5, 0.5, 0.5], None]
    ensembles = [[1], [], []]
    fig = F.class_profiles(means, ensembles, NAMES, factor=2.0)
    ax0 = fig.axes[0]
    assert ax0.get_title() == "0 T-shirt  |E| = 1"  # the size in the title, never over the bars
    assert not ax0.texts
    bars = {to_hex(c.get_colors()[0]): [(seg[0][0], seg[1][1]) for seg in c.get_segments()] for c in ax0.collections}
    assert bars[F.ENSEMBLE_COLOR.lower()] == [(1.0, 0.9)]  # unit 1 only
    assert bars[F.OTHER_COLOR] == [(0.0, 0.1), (2.0, 0.0), (3.0, 0.2)]
    # each unit's own threshold: 2 × the mean of the other three units (the leave-one-out rule)
    assert list(ax0.lines[0].get_ydata()) == pytest.approx([2 * 1.1 / 3, 2 * 0.3 / 3, 2 * 1.2 / 3, 2 * 1.0 / 3])
    assert "no correct rows" in [t.get_text() for t in fig.axes[2].texts]


def test_class_profiles_frame_the_heldout_class():
    fig = F.class_profiles([[0.1, 0.9, 0.0], [0.2, 0.0, 0.8]], [[1], [2]], NAMES, heldout=1)
    assert fig.axes[1].get_title() == "1 Trouser (held out)\n|E| = 1"  # two lines: one would run past the edge
    assert fig.axes[1].spines["left"].get_edgecolor() == pytest.approx((0.75, 0.0, 0.0, 1.0), abs=0.01)


def test_activation_map_labels_rows_by_class():
    matrix = [
        [1.0, 0.9, 0.0, 0.0, 0.1, 0.0],
        [0.9, 0.8, 0.1, 0.0, 0.0, 0.0],
        [0.0, 0.1, 1.0, 0.2, 0.0, 0.1],
        [0.0, 0.0, 0.8, 0.1, 0.0, 0.0],
    ]
    fig = F.activation_map(matrix, [0, 0, 1, 1], [0, 0, 1, -1, 2, -1], NAMES, n_units=60, layer=2)
    heat = fig.axes[1]
    assert [t.get_text() for t in heat.get_yticklabels()] == ["0 T-shirt", "1 Trouser"]
    assert list(heat.get_yticks()) == [0.5, 2.5]
    assert heat.images[0].get_array().shape == (4, 6)
    assert "60 units" in heat.get_xlabel() and "6 columns" in heat.get_xlabel()
    # the ensemble strip names blocks of two columns or more (class 2's single column stays unlabelled)
    assert [(t.get_text(), t.get_position()[0]) for t in fig.axes[0].texts] == [("0", 0.5)]


def test_column_membership_counts_every_ensemble_of_a_shared_unit():
    amap = {"unit_order": [3, 0, 1, 2], "col_edges": [0, 2, 4]}
    # unit 0 is in the ensembles of classes 0 and 2; class 1 is undefined (no rows)
    assert F.column_membership(amap, [[0, 3], None, [0, 1]]) == [[1.0, 0.0], [0.0, 0.0], [0.5, 0.5]]
    assert F.column_membership(amap, None) is None


def test_activation_map_strip_has_a_row_per_class_and_marks_the_heldout_rows():
    matrix = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    membership = [[1.0, 0.0], [1.0, 1.0], [0.0, 0.5]]  # class 1 shares column 0 with class 0
    fig = F.activation_map(matrix, [0, 1, 2], [0, 1], NAMES, membership=membership, heldout=2)
    strip = fig.axes[0].images[0].get_array()
    assert strip.shape == (3, 2, 3)
    white = (1.0, 1.0, 1.0)
    assert tuple(strip[0, 1]) == white and tuple(strip[0, 0]) != white  # class 0 only in column 0
    assert tuple(strip[1, 0]) != white and tuple(strip[1, 1]) != white  # class 1 in both
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["0", "1", "2"]
    red = [line for line in fig.axes[1].lines if line.get_color() == "red"]
    assert sorted(line.get_ydata()[0] for line in red) == [1.5, 2.5]  # around the held-out class's row
    assert "held-out class 2" in fig.axes[0].get_title()


def test_class_matrices_write_values_with_class_names():
    shared = [[3, 1], [1, 2]]
    jac = [[1.0, 0.25], [0.25, 1.0]]
    fig = F.class_matrices([("Shared units", shared, 0), ("Jaccard", jac, 2), ("Undefined", None, 2)], NAMES)
    a, b, undefined = fig.axes[:3]  # the colour bars come after the panels
    assert [t.get_text() for t in a.texts] == ["3", "1", "1", "2"]
    assert [t.get_text() for t in b.texts] == ["1.00", "0.25", "0.25", "1.00"]
    assert [t.get_text() for t in a.get_xticklabels()] == ["0 T-shirt", "1 Trouser"]
    assert "undefined" in undefined.texts[0].get_text()


def test_heatmaps_label_rows_and_columns():
    cka = [[0.9, 0.5, 0.2], [0.4, 0.8, 0.6]]
    fig = F.heatmaps([("linear CKA", cka, 2)], ["FF L1", "FF L2"], ["BP L1", "BP L2", "BP L3"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["FF L1", "FF L2"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["BP L1", "BP L2", "BP L3"]
    assert [t.get_text() for t in ax.texts] == ["0.90", "0.50", "0.20", "0.40", "0.80", "0.60"]
    assert ax.images[0].get_clim() == (0.0, 1.0)


def test_weight_histograms_draw_the_stored_counts():
    rho = {"mean": 0.4, "std": 0.1, "hist": {"counts": [1, 3, 0, 2], "edges": [0, 0.25, 0.5, 0.75, 1]}}
    bias = {"mean": -0.1, "std": 0.2, "hist": {"counts": [2, 4], "edges": [-1, 0, 1]}}
    fig = F.weight_histograms([rho, None], [bias, None])
    assert len(fig.axes) == 4
    values = fig.axes[0].patches[0].get_path().vertices[:, 1]
    assert max(values) == 3
    assert fig.axes[0].lines[0].get_xdata()[0] == 0.4  # the mean
    assert "no weights" in fig.axes[1].texts[0].get_text()


def test_ensemble_curves_from_a_history():
    h = RunHistory.from_snapshots(read_snapshots_file("ff_run.jsonl"))
    fig = F.ensemble_curves(h.eval_epochs, h.per_layer["ensemble_size_pct"], h.stability_mean)
    left, right = fig.axes
    assert list(left.lines[0].get_xdata()) == h.eval_epochs
    assert right.get_ylim()[1] == pytest.approx(1.02)


def test_heldout_ensembles_bars_count_shared_units():
    seen = [[0, 1], [2], [3, 4, 5]]
    heldout = [{"ensemble": [1, 5, 9], "shared_with_seen": [1, None, 1]}, {"ensemble": None}]
    fig = F.heldout_ensembles(1, heldout, [seen, None], ["a", "b", "c"])
    ax = fig.axes[0]
    heights = [b.get_height() for b in _bars(ax)]
    # grey |E_c| (0 at k), blue shared with E_k, then |E_k| at k
    assert heights == [2, 0, 3, 1, 0, 1, 3]
    assert ax.get_title() == "layer 1: |E_k| = 3\n2 in a seen ensemble"
    assert "undefined" in fig.axes[1].texts[0].get_text()


def read_snapshots_file(name: str):
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        shutil.copy(DATA / name, Path(d) / "snapshots.jsonl")
        return read_snapshots(Path(d))


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_page_is_self_contained_and_escaped(tmp_path):
    png, svg = F.save_figure(F.training_curves([1, 2], [[0.5, 0.4]]), tmp_path, "loss")
    page = HtmlPage("Report <run>", subtitle="a & b")
    page.heading("Accuracy")
    page.paragraph("final <b>not bold</b>")
    page.table(["", "acc"], [["layer 1", "90.00%"]], caption="per layer")
    page.figure(svg, "Loss (SVG)")
    page.figure(png, "Loss (PNG)")
    out = page.write(tmp_path / "report.html")
    text = out.read_text()
    assert "http://" not in text and "https://" not in text
    parser = _Collect()
    parser.feed(text)
    imgs = [a for t, a in parser.tags if t == "img"]
    assert [a["src"].split(";")[0] for a in imgs] == ["data:image/svg+xml", "data:image/png"]
    assert base64.b64decode(imgs[0]["src"].split(",", 1)[1]) == svg.read_bytes()
    assert page.figures == ["fig-loss", "fig-loss"]
    assert "final <b>not bold</b>" in "".join(parser.text)  # escaped text, not markup
    assert "&lt;run&gt;" in text and not re.search(r"<link|@import|url\(", text)
    with pytest.raises(ValueError, match=r"must be \.svg or \.png"):
        page.figure(tmp_path / "x.pdf", "no")
