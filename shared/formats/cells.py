"""CSV cells for files people open: text a spreadsheet shows rather than runs, and rows every
CSV reader splits the same way.  Pure.

A spreadsheet runs a cell that starts with ``= + - @``, a tab or a CR as a formula; such text
gets a leading ``'``, the usual neutralisation.  Text that is a plain decimal number (``-5``,
``+3.25``) is left alone: it cannot run anything.

Python's csv module quotes a cell only for the characters of its line terminator, so with
``\\n`` line ends a cell holding a lone CR would be written bare: Python's csv then splits the
record there and Ruby's refuses the file.  ``CsvWriter`` quotes such a row whole.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from typing import IO

FORMULA_TRIGGERS = frozenset("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")


def neutralise(text: str) -> str:
    """``text`` as a spreadsheet will show it rather than run it."""
    if text[:1] in FORMULA_TRIGGERS and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


class CsvWriter:
    """Rows of text cells with ``\\n`` line ends; a row with a CR in any cell is quoted whole
    (every reader reads it back as written)."""

    def __init__(self, out: IO[str]) -> None:
        self._plain = csv.writer(out, lineterminator="\n")
        self._quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row: Sequence[str]) -> None:
        """Write ``row``, quoted whole when one of its cells holds a CR."""
        self.writerow_checked(row, any("\r" in cell for cell in row))

    def writerow_checked(self, row: Sequence[str], has_cr: bool) -> None:
        """Write ``row`` whose caller knows whether a cell holds a CR (the hot loops)."""
        (self._quoted if has_cr else self._plain).writerow(row)
