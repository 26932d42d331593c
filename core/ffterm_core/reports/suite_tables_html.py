"""summary.html: a suite's study tables and their figures in one self-contained page.

Figures (PNG + SVG in SUITE/figures/): per-layer sparsity and ensemble size as bars with error bars
across seeds (Fig. 2), the layer-1 Jaccard matrices of Fig. 12 and the layer-by-layer CKA of Fig. 13.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ffterm_core.records import SPARSITY_CUTOFF
from ffterm_core.reports.html_page import HtmlPage
from ffterm_core.reports.suite_tables import (
    LEGEND,
    NOT_LEARNED_NOTE,
    NOT_THE_STUDY,
    Matrix,
    StudyTable,
    caption,
    learning_line,
    table_header,
    table_rows,
)
from ffterm_core.suites.spec import TABLES

BAR_TABLES = {
    "table2": ("sparsity", (0.0, 1.0), SPARSITY_CUTOFF),
    "table12": ("sparsity", (0.0, 1.0), SPARSITY_CUTOFF),
    "table9": ("sparsity", (0.0, 1.0), SPARSITY_CUTOFF),
    "table3": ("ensemble size %", None, None),
    "table13": ("ensemble size %", None, None),
}


def _cached(out: Path, name: str, data: Any, draw: Callable[[], Any]) -> Path:
    """figures/NAME.svg (+ .png), drawn again only when its data changed (summaries are rewritten often)."""
    from ffterm_core.figures.draw import save_figure

    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    stamp, svg = out / f".{name}.sha256", out / f"{name}.svg"
    if svg.exists() and (out / f"{name}.png").exists() and stamp.exists() and stamp.read_text() == digest:
        return svg
    path = save_figure(draw(), out, name)[1]
    stamp.write_text(digest)
    return path


def _bars(table: StudyTable, out: Path) -> Path:
    from ffterm_core.figures.draw import layer_bars

    ylabel, ylim, threshold = BAR_TABLES[table.key]
    groups: dict[str, list[dict[str, Any] | None]] = {}  # one bar group per block and column, a bar per layer
    for row in table.rows:
        for column, c in zip(table.columns, row.cells):
            groups.setdefault(f"{row.group} · {column}", []).append(
                {"mean": c.mean, "std": c.std} if c is not None else None
            )
    return _cached(
        out,
        table.key,
        [table.title, groups],
        lambda: layer_bars(groups, ylabel=ylabel, title=table.title, ylim=ylim, threshold=threshold),
    )


def _matrices(ms: list[Matrix], name: str, out: Path) -> Path:
    """Matrices of one group side by side."""
    from ffterm_core.figures.draw import class_matrices

    panels = [(f"{m.title} (n={m.n})", m.values, 2) for m in ms]
    labels = ms[0].labels
    return _cached(out, name, [panels, labels], lambda: class_matrices(panels, labels))


def write_summary_html(summary: dict[str, Any], suite_dir: Path) -> Path:
    """Write SUITE/summary.html (and the figures it inlines into SUITE/figures/)."""
    out = Path(suite_dir) / "figures"
    states = ", ".join(f"{n} {s}" for s, n in sorted(summary["states"].items()))
    page = HtmlPage(f"Suite {summary['suite']}", f"{states}. {summary.get('description') or ''}".strip())
    warning = learning_line(summary)
    if warning:
        page.paragraph(warning)
    if summary.get("not_the_study"):
        page.paragraph(f"{NOT_THE_STUDY} " + "; ".join(summary["not_the_study"]) + ".")
    page.paragraph(LEGEND, note=True)
    for table in summary["tables"]:
        page.heading(table.title)
        page.table(table_header(table), table_rows(table), caption=caption(table) or None)
        if table.key in BAR_TABLES and table.rows:
            page.figure(_bars(table, out), f"{table.title}: mean ± std across seeds")
    groups: dict[tuple[str, str], list[Matrix]] = {}
    for m in summary["matrices"]:
        groups.setdefault((m.key, m.group or m.title), []).append(m)
    for i, ((key, _), ms) in enumerate(groups.items()):
        titles = "; ".join(m.caption for m in ms)
        if any(m.not_learned for m in ms):
            titles += ". " + NOT_LEARNED_NOTE
        page.heading(TABLES[key].split(":")[0] + ": " + ", ".join(m.title for m in ms), level=3)
        page.figure(_matrices(ms, f"{key}-{i}", out), titles)
    if summary["failed"]:
        page.heading("Failed runs")
        page.table(["run", "error"], [[f["run"], f["error"]] for f in summary["failed"]])
    return page.write(Path(suite_dir) / "summary.html")
