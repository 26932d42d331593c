"""Text panels of the Ensembles view for the questions beyond the study: a class's unit × evaluation
raster (the life of its ensemble units) and its activation patterns (microstructure) as small bars."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from rich.text import Text

from ffterm_core.analysis.ensemble_life import ClassLife
from ffterm_core.store import rundir
from ffterm_core.store.validation import Notice

MEMBER, ABSENT, UNDEFINED = ("█", "#e69f00"), ("·", "grey42"), (" ", "")


def raster_text(life: ClassLife | None, title: str, width: int, height: int) -> Text:
    """One line per unit ever in the ensemble (as many as fit, earliest joiners first), one column per
    evaluation (the latest ones when they do not all fit)."""
    out = Text(title + "\n", style="bold")
    if life is None or not life.joined:
        out.append("no ensemble units yet (ensembles undefined or empty)", style="dim")
        return out
    units, rows = life.raster()
    first_join = {u: next(i for i, v in enumerate(row) if v) for u, row in zip(units, rows)}
    order = sorted(range(len(units)), key=lambda i: (first_join[units[i]], units[i]))
    stable = life.stable_epoch()
    out.append(
        f"{len(units)} units ever · stable from {'—' if stable is None else f'epoch {stable}'} · "
        f"turnover last {life.turnover[-1] if life.turnover[-1] is not None else '—'}\n",
        style="dim",
    )
    cols = max(1, width - 6)
    room = max(1, height - 3)
    for i in order[:room]:
        row = rows[i][-cols:]
        out.append(f"{units[i]:>5} ", style="dim")
        for v in row:
            char, style = MEMBER if v else (ABSENT if v is False else UNDEFINED)
            out.append(char, style=style)
        out.append("\n")
    if len(order) > room:
        out.append(f"… {len(order) - room} more units", style="dim")
    return out


class PatternSource:
    """The microstructure entries of a run directory's analysis.json, re-read only when the file changes;
    a damaged file is said once through `on_bad` and shows as none."""

    def __init__(self, on_bad: Notice | None = None) -> None:
        self._on_bad = on_bad
        self._stamp: tuple[Path, float] | None = None
        self._layers: list[Any] = []

    def layers(self, run_dir: Path | None) -> list[Any]:
        stamp = None
        if run_dir is not None:
            path = Path(run_dir) / rundir.ANALYSIS
            with contextlib.suppress(OSError):
                stamp = (path, path.stat().st_mtime)
        if stamp != self._stamp:
            analysis = rundir.read_analysis(stamp[0].parent, self._on_bad) if stamp else None
            self._stamp = stamp
            self._layers = [layer.get("microstructure") for layer in (analysis or {}).get("layers", [])]
        return self._layers


def patterns_text(entry: dict[str, Any] | None, width: int) -> Text:
    """A class's activation patterns: a bar per pattern (its share of the class's images), its image
    count and the Jaccard index of its own ensemble with the class's."""
    out = Text("Patterns (analyze --microstructure)\n", style="bold")
    if not entry or not entry.get("patterns"):
        out.append("none yet: `ffterm analyze RUN_DIR\n--microstructure` finds them", style="dim")  # fits narrow panels
        return out
    patterns = entry["patterns"]
    total = sum(p["size"] for p in patterns) or 1
    bar_room = max(4, width - 26)
    for i, p in enumerate(patterns):
        n = max(1, round(p["size"] / total * bar_room))
        jac = p.get("jaccard_with_class")
        out.append(f"P{i + 1}{'*' if i == entry.get('dominant') else ' '} ", style="bold")
        out.append("▇" * n, style="#0072b2" if i == entry.get("dominant") else "#56b4e9")
        out.append(f" {p['size']} img · J {'—' if jac is None else f'{jac:.2f}'}\n")
    return out
