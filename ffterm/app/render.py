"""Text renderings that plotext does poorly: per-unit bar strips, the activation map, matrices.

Pure functions from numbers to rich Text, sized to the cells they are given; colours degrade to
256 colours on their own (Textual maps truecolor for the terminal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from rich.style import Style
from rich.text import Text

from ffterm_core.records import SPARSITY_CUTOFF

# viridis-like ramp, dark → bright
_RAMP = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
LEVELS = 32
CLASS_COLORS = [
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
]
ENSEMBLE_COLOR = "#ff8c1a"
OTHER_COLOR = "#4a90d9"
_EIGHTHS = " ▁▂▃▄▅▆▇█"


@lru_cache(maxsize=LEVELS + 1)
def ramp_rgb(level: int) -> tuple[int, int, int]:
    t = max(0, min(LEVELS, level)) / LEVELS * (len(_RAMP) - 1)
    i = min(int(t), len(_RAMP) - 2)
    f = t - i
    a, b = _RAMP[i], _RAMP[i + 1]
    return tuple(round(a[k] + (b[k] - a[k]) * f) for k in range(3))  # type: ignore[return-value]


def rgb(level: int) -> str:
    r, g, b = ramp_rgb(level)
    return f"rgb({r},{g},{b})"


@lru_cache(maxsize=(LEVELS + 1) ** 2)
def _half_style(top: int, bottom: int) -> Style:
    return Style.parse(f"{rgb(top)} on {rgb(bottom)}")


def _level(v: float, vmax: float) -> int:
    if vmax <= 0 or not math.isfinite(v):
        return 0
    return max(0, min(LEVELS, round(v / vmax * LEVELS)))


def _append_runs(text: Text, cells: list[tuple[str, Style | str]]) -> None:
    """Append cells, merging neighbours of the same style into one span: the terminal renders
    spans one by one, so a row of 150 equal cells costs as much as one."""
    run, run_style = "", None
    for chars, style in cells:
        if style == run_style:
            run += chars
            continue
        if run:
            text.append(run, style=run_style)
        run, run_style = chars, style
    if run:
        text.append(run, style=run_style)


def _bins(n: int, k: int) -> list[tuple[int, int]]:
    """Split range(n) into k contiguous, near-equal [start, end) bins (k <= n)."""
    return [(i * n // k, (i + 1) * n // k) for i in range(k)]


def bar_strip(
    values: Sequence[float], highlight: set[int] | frozenset[int], width: int, height: int, title: str = ""
) -> Text:
    """Vertical bars, one per unit (units binned by max when there are more units than columns).

    Highlighted units (the class's ensemble) in orange, others in blue. A y label on the left and
    unit indices under the bars.
    """
    text = Text(no_wrap=True, overflow="crop")
    if title:
        text.append(title[:width] + "\n", style="bold")
        height -= 1
    n = len(values)
    if n == 0 or width < 12 or height < 3:
        text.append("no activations yet" if n == 0 else "(too small)", style="dim")
        return text
    vmax = max(max(values), 1e-9)
    gutter = 7
    area_w = width - gutter
    h = height - 1
    if n <= area_w:
        bar_w = max(1, min(12, area_w // n))
        cols = [(i, i + 1) for i in range(n)]
    else:
        bar_w = 1
        cols = _bins(n, area_w)
    col_vals = [max(values[a:b]) for a, b in cols]
    col_hi = [any(u in highlight for u in range(a, b)) for a, b in cols]
    for row in range(h):
        label = f"{vmax:6.2f} " if row == 0 else (f"{0:6.2f} " if row == h - 1 else " " * gutter)
        text.append(label[:gutter], style="dim")
        level_top = (h - row) * 8
        gap = " " if bar_w > 1 else ""
        cells: list[tuple[str, Style | str]] = []
        for v, hi in zip(col_vals, col_hi):
            units8 = v / vmax * h * 8
            fill = max(0, min(8, round(units8 - (level_top - 8))))
            cells.append((_EIGHTHS[fill] * (bar_w - len(gap)) + gap, ENSEMBLE_COLOR if hi else OTHER_COLOR))
        _append_runs(text, cells)
        text.append("\n")
    # x axis: unit index at the left, middle and right
    axis = [" "] * (len(cols) * bar_w)
    for pos, unit in ((0, cols[0][0]), (len(axis) // 2, cols[len(cols) // 2][0]), (len(axis) - 1, cols[-1][1] - 1)):
        label = str(unit)
        start = max(0, min(len(axis) - len(label), pos - (len(label) // 2 if pos else 0)))
        if pos == len(axis) - 1:
            start = len(axis) - len(label)
        for j, ch in enumerate(label):
            axis[start + j] = ch
    text.append(" " * (gutter - 5) + "unit ", style="dim")
    text.append("".join(axis), style="dim")
    return text


def activation_map(
    matrix: Sequence[Sequence[float]],
    row_class: Sequence[int],
    col_class: Sequence[int],
    width: int,
    height: int,
    names: Sequence[str],
) -> Text:
    """Class-grouped activation map: rows = test samples grouped by class, columns = units in the
    analysis's order (ensemble units of class 0 first, …). Two rows per line with half blocks.
    The top ruler marks which class's ensemble each column belongs to ("·": none)."""
    text = Text(no_wrap=True, overflow="crop")
    R = len(matrix)
    K = len(matrix[0]) if R else 0
    gutter = 11
    if R == 0 or K == 0 or width < gutter + 4 or height < 3:
        text.append("no activation map yet" if R == 0 else "(too small)", style="dim")
        return text
    area_w = width - gutter
    lines = height - 1
    row_bins = _bins(R, min(R, 2 * lines))
    col_bins = _bins(K, min(K, area_w))
    # fewer units than columns: widen them (by one column more or less) to fill the width
    widths = [1] * len(col_bins) if area_w <= K else [b - a for a, b in _bins(area_w, K)]
    m = np.asarray(matrix, dtype=np.float64)
    vmax = max(float(np.percentile(m, 99)), 1e-9)
    # ruler
    text.append(" ensemble ".ljust(gutter), style="dim")
    for (a, b), w in zip(col_bins, widths):
        owners = [c for c in col_class[a:b] if c is not None and c >= 0]
        if owners:
            c = max(set(owners), key=owners.count)
            text.append("▄" * w, style=CLASS_COLORS[c % len(CLASS_COLORS)])
        else:
            text.append("·" * w, style="dim")
    text.append("\n")
    # mean over each (row bin × column bin) block
    row_starts = [a for a, _ in row_bins]
    col_starts = [a for a, _ in col_bins]
    sizes = np.outer([b - a for a, b in row_bins], [b - a for a, b in col_bins])
    binned = (np.add.reduceat(np.add.reduceat(m, row_starts, axis=0), col_starts, axis=1) / sizes).tolist()
    last_label = None
    for line in range(0, len(binned), 2):
        top = binned[line]
        bottom = binned[line + 1] if line + 1 < len(binned) else None
        cls = row_class[row_bins[line][0]]
        cls2 = row_class[row_bins[line + 1][0]] if bottom is not None else cls
        label_cls = cls if cls != last_label else (cls2 if cls2 != last_label else None)
        if label_cls is not None:
            name = names[label_cls] if label_cls < len(names) else str(label_cls)
            label = str(label_cls) if name == str(label_cls) else f"{label_cls} {name}"
            text.append(f" {label}"[: gutter - 1].ljust(gutter), style=CLASS_COLORS[label_cls % len(CLASS_COLORS)])
            last_label = cls2
        else:
            text.append(" " * gutter)
        _append_runs(
            text,
            [
                ("▀" * widths[j], _half_style(_level(v, vmax), _level(bottom[j], vmax) if bottom is not None else 0))
                for j, v in enumerate(top)
            ],
        )
        text.append("\n")
    return text


def matrix_grid(
    matrix: Sequence[Sequence[float | None]] | None,
    names: Sequence[str],
    jaccard: bool,
    width: int,
    selected: int | None = None,
    title: str = "",
) -> Text:
    """A C×C matrix as a coloured grid (shared-unit counts, or Jaccard in [0, 1])."""
    text = Text(no_wrap=True, overflow="crop")
    if title:
        text.append(title + "\n", style="bold")
    if matrix is None:
        text.append(f"no ensembles: layer sparsity < {SPARSITY_CUTOFF:g}", style="dim italic")
        return text
    C = len(matrix)
    if C == 0:
        return text
    label_w = 4
    widest = 3 if jaccard else max(len(str(int(v))) for row in matrix for v in row if v is not None)  # ".42"
    # never crop a number; where a separating space does not fit, the cells' colours separate them
    gap = 1 if label_w + C * (widest + 1) <= width else 0
    cell_w = max(widest + gap, min(6, (width - label_w) // C))
    offdiag = [v for i in range(C) for j in range(C) if i != j and (v := matrix[i][j]) is not None] or [0]
    vmax = 1.0 if jaccard else max(max(offdiag), 1)
    text.append(" " * label_w)
    for j in range(C):
        style = CLASS_COLORS[j % len(CLASS_COLORS)] + (" bold underline" if j == selected else "")
        text.append(str(j).rjust(cell_w - gap) + " " * gap, style=style)
    text.append("\n")
    for i, row in enumerate(matrix):
        style = CLASS_COLORS[i % len(CLASS_COLORS)] + (" bold reverse" if i == selected else "")
        text.append(f"{i}"[: label_w - 1].rjust(label_w - 1) + " ", style=style)
        for j, v in enumerate(row):
            if v is None:  # a class without rows: its ensemble is undefined
                text.append("·".rjust(cell_w - gap) + " " * gap, style="dim")
                continue
            if jaccard:
                s = f"{v:.2f}" if cell_w >= 5 else (f"{v:.2f}"[1:] if v < 1 else "1.0")
            else:
                s = str(int(v))
            level = LEVELS if i == j else _level(float(v), vmax)
            fg = "black" if level > LEVELS * 0.6 else "white"
            cell_style = f"{fg} on {rgb(level)}" + (" dim" if i == j else "")
            text.append(s.rjust(cell_w - gap) + " " * gap, style=cell_style)
        if label_w + C * cell_w + 4 <= width and i < len(names) and names[i] != str(i):
            name = names[i]
            text.append(" " + name, style="dim" if i != selected else "bold")
        text.append("\n")
    return text


def sparkline(values: Sequence[float | None], width: int) -> str:
    """One-line sparkline of the last `width` values (None → space)."""
    vals = list(values)[-width:]
    finite = [v for v in vals if v is not None]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    return "".join(" " if v is None else _EIGHTHS[1 + round((v - lo) / span * 7)] for v in vals)
