"""Errors shared by the command line and the commands it runs."""


class UsageError(Exception):
    """A command-line problem; printed as one line, exit status 2."""
