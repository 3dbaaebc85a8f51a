"""The customer export bucket's layout and files, and which revisions a cycle may export.  Pure.

``<prefix>revisions/<n>.json`` is revision n, byte for byte; ``<prefix>index.csv`` has one row
per exported revision; ``<prefix>status.csv`` one row summing up the export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.clock import iso_utc, parse_iso_utc
from shared.errors import UsageError

INDEX_HEADER = ("Filename", "Minimum Timestamp", "Maximum Timestamp", "Minimum UTC Timestamp",
                "Maximum UTC Timestamp")
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


@dataclass(frozen=True, slots=True)
class IndexRow:
    number: int
    min_t: int | None
    max_t: int | None

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


def parse_index(data: bytes) -> list[IndexRow]:
    """Read back an index written by ``format_index``."""
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    rows: list[IndexRow] = []
    for i, cells in enumerate(reader):
        if i == 0 or not cells:
            continue
        name = cells[0].removeprefix("revisions/").removesuffix(".json")
        rows.append(IndexRow(number=int(name), min_t=int(cells[1]) if cells[1] else None,
                             max_t=int(cells[2]) if cells[2] else None))
    return rows


def format_status(total_revisions: int, exported: int, max_exported_t: int | None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STATUS_HEADER)
    writer.writerow((total_revisions, exported, "" if max_exported_t is None else max_exported_t,
                     "" if max_exported_t is None else iso_utc(max_exported_t)))
    return out.getvalue().encode("utf-8")


def resolve_cutoff(cutoff: str | None, now_s: float) -> float:
    """Unix seconds before which revisions are exportable.

    ``None``/``yesterday``: 00:00 UTC today (data up to yesterday); ``now``; or ISO 8601.
    """
    if cutoff in (None, "yesterday"):
        today = datetime.fromtimestamp(now_s, tz=UTC).replace(hour=0, minute=0, second=0,
                                                              microsecond=0)
        return today.timestamp()
    if cutoff == "now":
        return now_s
    try:
        return parse_iso_utc(cutoff)
    except ValueError:
        raise UsageError(f"invalid cutoff {cutoff!r}") from None


def lookback_start(now_s: float, lookback_days: int) -> float:
    """Revisions written before this are too old to export by default."""
    return (datetime.fromtimestamp(now_s, tz=UTC) - timedelta(days=lookback_days)).timestamp()
