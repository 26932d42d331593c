"""Numbers as text, the same way in reports, summaries and the app."""

from __future__ import annotations

import math
from typing import Any

MISSING = "—"


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
