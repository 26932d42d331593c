"""What run and suite reports share: the page they are written on, the report folder, reading a run's settings."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

from ffterm_core.config import ConfigError, RunConfig
from ffterm_core.store.rundir import CONFIG, REPORTS, RunDirError, read_config


def report_dir(run_dir: Path, now: datetime | None = None) -> Path:
    """RUN_DIR/reports/<YYYYmmdd-HHMMSS>[-n]/ (not created)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = Path(run_dir) / REPORTS
    path = base / stamp
    n = 1
    while path.exists():
        n += 1
        path = base / f"{stamp}-{n}"
    return path


class Page(Protocol):
    """What a report is written on: ffterm_core.reports.markdown_page.MarkdownPage or ffterm_core.reports.html_page.HtmlPage."""

    def heading(self, text: str, level: int = 2) -> None: ...
    def paragraph(self, text: str, *, note: bool = False) -> None: ...
    def table(self, header: list[str], rows: list[list[str]], caption: str | None = None) -> None: ...
    def figure(self, images: list[Path], caption: str, alt: str | None = None) -> None: ...


# What reading a file of the right syntax but the wrong shape raises (a field of another type, a
# missing key); RunDirError, a ValueError, is already one line and passes through.
DAMAGED = (TypeError, ValueError, KeyError, AttributeError, IndexError)


def damaged(path: Path, exc: BaseException) -> RunDirError:
    """The one-line error for a run file whose content is not in the form ffterm writes."""
    if isinstance(exc, RunDirError):
        return exc
    return RunDirError(
        f"{path}: not in the form ffterm writes ({type(exc).__name__}: {exc}); restore it or remove the damaged part"
    )


def read_run_config(run_dir: Path) -> RunConfig:
    """The run's settings from RUN_DIR/config.yaml; a missing or broken file is a one-line RunDirError."""
    try:
        return read_config(run_dir)
    except ConfigError as exc:
        raise RunDirError(f"{Path(run_dir) / CONFIG}: {exc}") from None
