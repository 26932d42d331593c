"""A self-contained HTML page: headings, paragraphs, tables and figures, in one file.

Figures are inlined as data URIs (SVG, or PNG), the style sheet is a few inline lines and the fonts
are the reader's system fonts, so the page refers to nothing outside itself and opens offline.
Used for run reports and suite summaries alike:

    page = HtmlPage("Run report — ff-mnist")
    page.heading("Accuracy")
    page.table(["", "accuracy"], [["final", "97.10%"]])
    page.figure(Path("figures/accuracy.svg"), "Test accuracy over the epochs")
    page.write(out_dir / "report.html")
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from ffterm_core.reports.markdown_page import pick_format
from ffterm_core.store.rundir import atomic_write_text

_MIME = {".svg": "image/svg+xml", ".png": "image/png"}

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  margin: 2rem auto; max-width: 72rem; padding: 0 1.5rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem;
  border-bottom: 1px solid #ddd; padding-bottom: .2rem; } h3 { font-size: 1.05rem; margin-top: 1.6rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-variant-numeric: tabular-nums; font-size: .9rem; }
th, td { border: 1px solid #d5d5d5; padding: .25rem .55rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3rem; }
figure { margin: 1rem 0 1.6rem; } figure img { max-width: 100%; height: auto; }
figcaption { color: #444; font-size: .9rem; margin-top: .3rem; }
.note { color: #555; font-size: .9rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
"""


class HtmlPage:
    """Blocks added in order, rendered as one HTML5 document. Every text is escaped."""

    def __init__(self, title: str, subtitle: str | None = None) -> None:
        self.title = title
        self._blocks: list[str] = [f"<h1>{_esc(title)}</h1>"]
        if subtitle:
            self._blocks.append(f'<p class="note">{_esc(subtitle)}</p>')
        self.figures: list[str] = []  # the figure ids, in order

    def heading(self, text: str, level: int = 2) -> None:
        if not 2 <= level <= 4:
            raise ValueError(f"heading level must be 2, 3 or 4, got {level}")
        self._blocks.append(f"<h{level}>{_esc(text)}</h{level}>")

    def paragraph(self, text: str, *, note: bool = False) -> None:
        cls = ' class="note"' if note else ""
        self._blocks.append(f"<p{cls}>{_esc(text)}</p>")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]], caption: str | None = None) -> None:
        head = "".join(f"<th>{_esc(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
        cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
        self._blocks.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def figure(self, images: Path | Sequence[Path], caption: str, alt: str | None = None) -> None:
        """Inline an SVG or PNG file as a data URI, with a caption (of both formats given, the SVG)."""
        image = pick_format(images, (".svg", ".png"))
        mime = _MIME.get(image.suffix.lower())
        if mime is None:
            raise ValueError(f"{image.name}: figures must be .svg or .png files")
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        fig_id = f"fig-{image.stem}"
        self.figures.append(fig_id)
        self._blocks.append(
            f'<figure id="{_esc(fig_id)}"><img src="data:{mime};base64,{data}" alt="{_esc(alt or caption)}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>"
        )

    def render(self) -> str:
        body = "\n".join(self._blocks)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_esc(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
        )

    def write(self, path: Path) -> Path:
        atomic_write_text(Path(path), self.render())
        return Path(path)


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)
