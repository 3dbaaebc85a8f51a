"""The customer export bucket's layout and files.  Pure.

``<prefix>revisions/<n>.json`` is revision n, byte for byte; ``<prefix>index.csv`` has one row
per exported revision; ``<prefix>status.csv`` one row summing up the export.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shared.errors import PermanentError
from shared.formats.times import iso_utc

INDEX_HEADER = ("Filename", "Minimum Timestamp", "Maximum Timestamp", "Minimum UTC Timestamp",
                "Maximum UTC Timestamp")
_FILENAME = re.compile(r"revisions/(\d+)\.json\Z")
STATUS_HEADER = ("Total Revisions", "Exported Revisions", "Max Exported Revision Timestamp",
                 "Max Exported Revision UTC Timestamp")


def normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip().lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def export_revision_name(number: int) -> str:
    """The ``Filename`` of an index row: ``revisions/<n>.json``."""
    return f"revisions/{number}.json"


def export_key(prefix: str, name: str) -> str:
    return normalise_prefix(prefix) + name


def export_location(bucket: str, prefix: str) -> str:
    """An export location as one string, ``bucket/prefix``: what an export ledger belongs to."""
    return f"{bucket}/{normalise_prefix(prefix)}"


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One row of ``index.csv``: a revision file and the range of ``_t`` it holds."""

    number: int
    min_t: int | None
    max_t: int | None
    # As read from a file: the Filename cell ("revisions/007.json") and the line; neither is
    # part of what the row says, so neither takes part in comparisons.
    name: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)

    @property
    def filename(self) -> str:
        return self.name or export_revision_name(self.number)

    def cells(self) -> tuple[str, str, str, str, str]:
        def text(t: int | None) -> str:
            return "" if t is None else str(t)

        def utc(t: int | None) -> str:
            return "" if t is None else iso_utc(t)

        return (export_revision_name(self.number), text(self.min_t), text(self.max_t),
                utc(self.min_t), utc(self.max_t))


def format_index(rows: Iterable[IndexRow]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(INDEX_HEADER)
    writer.writerows(row.cells() for row in rows)
    return out.getvalue().encode("utf-8")


class IndexUnreadable(PermanentError):
    """An ``index.csv`` that is not one: not UTF-8, or without its header."""


def _stamp(text: str) -> int | None:
    return int(text) if text.strip() else None


def parse_index(data: bytes, where: str,
                on_bad_row: Callable[[int, str], None] | None = None) -> list[IndexRow]:
    """The rows of an ``index.csv`` (``where`` names it in messages).

    A file that is not UTF-8 or lacks the header raises ``IndexUnreadable``: without the
    header its columns cannot be trusted.  A bad row goes to ``on_bad_row(line, reason)`` and
    is left out; without ``on_bad_row`` it raises ``IndexUnreadable`` too."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IndexUnreadable(f"{where} is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    first = next(reader, None)
    if first is None or tuple(c.strip() for c in first[:len(INDEX_HEADER)]) != INDEX_HEADER:
        raise IndexUnreadable(f"{where} does not start with the header "
                              f"{','.join(INDEX_HEADER)}")

    def bad(line: int, reason: str) -> None:
        if on_bad_row is None:
            raise IndexUnreadable(f"{where} line {line}: {reason}")
        on_bad_row(line, reason)

    rows = []
    for cells in reader:
        if not cells:
            continue
        match = _FILENAME.match(cells[0].strip())
        if match is None:
            bad(reader.line_num, f"Filename {cells[0]!r} is not revisions/<n>.json")
            continue
        try:
            min_t, max_t = _stamp(cells[1]), _stamp(cells[2])
        except (IndexError, ValueError):
            bad(reader.line_num, "Minimum/Maximum Timestamp are not whole seconds")
            continue
        rows.append(IndexRow(int(match.group(1)), min_t, max_t, name=match.group(0),
                             line=reader.line_num))
    return rows


def format_status(total_revisions: int, exported: int, max_exported_t: int | None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STATUS_HEADER)
    writer.writerow((total_revisions, exported, "" if max_exported_t is None else max_exported_t,
                     "" if max_exported_t is None else iso_utc(max_exported_t)))
    return out.getvalue().encode("utf-8")
