"""ffterm: watch Forward-Forward, BP-on-goodness and backprop networks learn, in a terminal."""

__version__ = "0.1.0"
