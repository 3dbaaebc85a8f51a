"""Human output of the CLI: rich tables on a terminal, unwrapped lines when piped."""

from __future__ import annotations

import sys

from rich.console import Console

PIPED_WIDTH = 240


def console() -> Console:
    """A console that folds to the terminal, but never wraps output meant for a pipe or log."""
    width = None if sys.stdout.isatty() else PIPED_WIDTH
    return Console(highlight=False, soft_wrap=False, width=width)
