"""`ffterm summary`: a suite's tables written as summary.md, summary.csv, summary.json and summary.html."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ffterm_core.reports.suite_tables import build_summary, to_csv, to_json, to_markdown
from ffterm_core.reports.suite_tables_html import write_summary_html
from ffterm_core.store import rundir


def write_summary(
    suite_dir: Path, *, compute_similarity: bool = True, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Write summary.md, summary.csv, summary.json and summary.html into the suite folder; returns the summary."""
    suite_dir = Path(suite_dir)
    summary = build_summary(suite_dir, compute_similarity=compute_similarity, log=log)
    rundir.atomic_write_text(suite_dir / "summary.md", to_markdown(summary))
    rundir.atomic_write_text(suite_dir / "summary.csv", to_csv(summary))
    rundir.write_json(suite_dir / "summary.json", to_json(summary))
    write_summary_html(summary, suite_dir)
    return summary
