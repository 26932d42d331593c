"""Numbers as text, the same way in reports, summaries and the app."""

from __future__ import annotations

import math
import re
from typing import Any

MISSING = "—"
# terminal escape sequences (CSI, OSC, other ESC-introduced ones) and every other control character
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|[\x00-\x1f\x7f-\x9f]")


def printable(value: Any) -> str:
    """`value` as text safe to print on a terminal: escape sequences and control characters removed
    (for anything that came from a file: a lock record, a run name, a path)."""
    return _ESCAPES.sub("", re.sub(r"[\t\n\r]+", " ", str(value)))


def fmt(value: Any, digits: int = 3, pct: bool = False, pct_digits: int = 1) -> str:
    """A number (or a fraction as a percentage); "—" for None/NaN/inf; ints stay ints."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if pct:
        return f"{100 * value:.{pct_digits}f}%"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def fmt_pm(stat: Any, digits: int = 3, sep: str = " ± ") -> str:
    """A {"mean", "std"} mapping as "mean ± std"; "—" when the mean is undefined."""
    if not isinstance(stat, dict) or stat.get("mean") is None:
        return MISSING
    std = stat.get("std")
    return f"{stat['mean']:.{digits}f}" + (f"{sep}{std:.{digits}f}" if std is not None else "")
