"""ffterm: watch Forward-Forward, BP-on-goodness and backprop networks learn, in a terminal."""

from ffterm_core import __version__

__all__ = ["__version__"]
