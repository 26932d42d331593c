"""The app's one colour list: layer i and run i are drawn in COLORS[i] (plotext colour names)."""

from __future__ import annotations

COLORS = ["cyan", "orange", "magenta", "green", "yellow", "blue", "red", "white"]
_RICH_NAMES = {"orange": "dark_orange", "gray": "grey50"}


def color_of(i: int) -> str:
    """The plotext colour of layer (or run) i, cycling through COLORS."""
    return COLORS[i % len(COLORS)]


def rich_color(plotext_color: str) -> str:
    """The Rich style name of a plotext colour name (they differ for orange and gray)."""
    return _RICH_NAMES.get(plotext_color, plotext_color)
