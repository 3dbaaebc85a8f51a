"""The bad-row report of an import file, ``<name>.errors.csv``: one row per record that was
skipped, with its record number, its first line, the reason and the start of its content."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

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
    writer = csv.writer(out, lineterminator="\n")
    if with_header:
        writer.writerow(REJECT_HEADER)
    for r in rejects:
        writer.writerow((r.record, r.line, r.reason, r.content))
    return out.getvalue().encode("utf-8")
