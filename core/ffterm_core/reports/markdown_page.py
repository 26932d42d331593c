"""A Markdown page with the same building calls as `ffterm_core.reports.html_page.HtmlPage`, so one report
builder writes both report.md and report.html.

Text comes from run files (a run's name, a suite's labels): Markdown renderers (GitHub, GitLab,
editors) pass raw HTML through, so `<`, `>` and `&` are written as entities and control characters
dropped; the Markdown the builder means (emphasis, tables, links) is untouched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ffterm_core.store.rundir import atomic_write_text


class MarkdownPage:
    """Blocks added in order; figures are linked by their path relative to the page's folder."""

    def __init__(self, title: str, subtitle: str | None = None, *, base: Path | None = None) -> None:
        self.title = title
        self.base = base
        self._lines: list[str] = [f"# {escape(title)}", ""]
        if subtitle:
            self._lines += [escape(subtitle), ""]

    def heading(self, text: str, level: int = 2) -> None:
        if not 2 <= level <= 4:
            raise ValueError(f"heading level must be 2, 3 or 4, got {level}")
        self._lines += ["#" * level + " " + escape(text), ""]

    def paragraph(self, text: str, *, note: bool = False) -> None:
        text = escape(text)
        self._lines += [f"*{text}*" if note else text, ""]

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]], caption: str | None = None) -> None:
        """A pipe table (its caption in bold above it): the first column left-aligned, the others
        right-aligned (numbers)."""
        if caption:
            self._lines += [f"**{escape(caption)}**", ""]
        self._lines += [
            "| " + " | ".join(_cell(h) for h in header) + " |",
            "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(header))) + "|",
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows),
            "",
        ]

    def figure(self, images: Path | Sequence[Path], caption: str, alt: str | None = None) -> None:
        """Link a figure file (of several formats given, the PNG: every Markdown viewer shows it)."""
        path = pick_format(images, (".png", ".svg"))
        if self.base is not None and path.is_relative_to(self.base):
            path = path.relative_to(self.base)
        target = path.as_posix().replace("(", "%28").replace(")", "%29").replace(" ", "%20")
        self._lines += [f"![{escape(alt or path.stem).replace(']', '')}]({escape(target)})", "", escape(caption), ""]

    def render(self) -> str:
        return "\n".join(self._lines).rstrip() + "\n"

    def write(self, path: Path) -> Path:
        atomic_write_text(Path(path), self.render())
        return Path(path)


def pick_format(images: Path | Sequence[Path], preferred: Sequence[str]) -> Path:
    """The first of `images` whose suffix comes first in `preferred` (a single path is returned as is)."""
    if isinstance(images, (str, Path)):
        return Path(images)
    paths = [Path(p) for p in images]
    for suffix in preferred:
        for p in paths:
            if p.suffix.lower() == suffix:
                return p
    raise ValueError(f"no {' or '.join(preferred)} file among {', '.join(p.name for p in paths)}")


_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape(text: object) -> str:
    """Text with no raw HTML and no control characters (newlines kept)."""
    return _CONTROL.sub("", re.sub(r"[&<>]", lambda m: _HTML[m.group()], str(text)))


def _cell(text: object) -> str:
    return escape(text).replace("|", "\\|").replace("\n", " ")
