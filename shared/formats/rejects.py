"""The bad-row report of an import file, ``<name>.errors.csv``: one row per record that was
skipped, with its record number, its first line, the reason and the start of its content.

Customers open it in a spreadsheet: its text is neutralised as ``files to-csv`` neutralises
it (``=HYPERLINK(…)`` in a rejected row stays text), and a CR in a cell is quoted."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass

from shared.formats.cells import CsvWriter, neutralise

REJECT_HEADER = ("Record", "Line", "Reason", "Content")
REJECT_CONTENT_CHARS = 200


@dataclass(frozen=True, slots=True)
class Reject:
    record: int
    line: int
    code: str  # a small fixed vocabulary, used as a metric label
    reason: str
    content: str


def format_rejects(rejects: Iterable[Reject], with_header: bool) -> bytes:
    out = io.StringIO()
    writer = CsvWriter(out)
    if with_header:
        writer.writerow(REJECT_HEADER)
    for r in rejects:
        writer.writerow((str(r.record), str(r.line), neutralise(r.reason),
                         neutralise(r.content)))
    return out.getvalue().encode("utf-8")
