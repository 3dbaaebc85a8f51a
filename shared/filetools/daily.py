"""The events of given UTC days, read through ``index.csv`` so only the files that can hold them
are fetched.

``index.csv`` has one row per exported revision with the minimum and maximum ``_t`` it holds.
A revision is fetched exactly when its ``[min, max]`` overlaps the requested days
``[start, end)``; a row without timestamps holds no timed event and is never fetched.  Of the
fetched files only lines whose ``_t`` falls in the days are written (lines without ``_t`` never
do), in numeric order of the files and file order within each.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO

from shared.errors import ObjectMissing, PermanentError, UsageError
from shared.filetools.sources import (
    ByteCounter,
    Input,
    Location,
    OpenedPart,
    Part,
    no_progress,
    read_small,
)
from shared.formats.exportfiles import INDEX_HEADER
from shared.formats.exportlines import TIME, LineScanner, Problem, Problems

INDEX_NAME = "index.csv"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_FILENAME = re.compile(r"revisions/(\d+)\.json\Z")
DAY_S = 86_400


@dataclass(frozen=True)
class DayWindow:
    """UTC days ``first..last`` as Unix seconds ``[start_s, end_s)``."""

    first: date
    last: date

    @property
    def start_s(self) -> int:
        return int(datetime.combine(self.first, datetime.min.time(), UTC).timestamp())

    @property
    def end_s(self) -> int:
        return int(datetime.combine(self.last + timedelta(days=1), datetime.min.time(),
                                    UTC).timestamp())

    def overlaps(self, min_t: int | None, max_t: int | None) -> bool:
        if min_t is None or max_t is None:
            return False
        return min_t < self.end_s and max_t >= self.start_s

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"


def parse_day(text: str, option: str) -> date:
    if not _DATE.match(text):
        raise UsageError(f"invalid {option} {text!r}: expected a UTC date as YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"invalid {option} {text!r}: {exc}") from None


def day_window(on: str | None, first: str | None, last: str | None) -> DayWindow:
    """The window of ``--date`` or of ``--from``/``--to`` (inclusive), exactly one of them."""
    if on is not None:
        if first is not None or last is not None:
            raise UsageError("give either --date or --from/--to, not both")
        day = parse_day(on, "--date")
        return DayWindow(day, day)
    if first is None or last is None:
        raise UsageError("give --date DAY, or --from DAY and --to DAY")
    window = DayWindow(parse_day(first, "--from"), parse_day(last, "--to"))
    if window.last < window.first:
        raise UsageError(f"--from {first} is after --to {last}")
    return window


@dataclass(frozen=True, slots=True)
class IndexEntry:
    line: int  # of index.csv, for messages
    number: int
    name: str  # "revisions/<n>.json", as the index names it
    min_t: int | None
    max_t: int | None


def _stamp(text: str) -> int | None:
    return int(text) if text.strip() else None


def parse_index(data: bytes, where: str, problems: Problems) -> list[IndexEntry]:
    """The rows of an ``index.csv``; a bad row is a problem (with its line), a bad header an
    error: without it the columns cannot be trusted."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PermanentError(f"{where} is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    first = next(reader, None)
    if first is None or tuple(c.strip() for c in first[:len(INDEX_HEADER)]) != INDEX_HEADER:
        raise PermanentError(f"{where} does not start with the header "
                             f"{','.join(INDEX_HEADER)}")
    entries = []
    for cells in reader:
        if not cells:
            continue
        match = _FILENAME.match(cells[0].strip())
        if match is None:
            problems.add(Problem(where, reader.line_num,
                                 f"Filename {cells[0]!r} is not revisions/<n>.json"))
            continue
        try:
            min_t, max_t = _stamp(cells[1]), _stamp(cells[2])
        except (IndexError, ValueError):
            problems.add(Problem(where, reader.line_num,
                                 "Minimum/Maximum Timestamp are not whole seconds"))
            continue
        entries.append(IndexEntry(reader.line_num, int(match.group(1)), match.group(0), min_t,
                                  max_t))
    return entries


def overlapping(entries: Iterable[IndexEntry], window: DayWindow) -> list[IndexEntry]:
    """The entries whose timestamp range meets the window, in numeric order, each number once."""
    chosen = {e.number: e for e in entries if window.overlaps(e.min_t, e.max_t)}
    return [chosen[n] for n in sorted(chosen)]


def index_of(root: Location, problems: Problems) -> list[IndexEntry]:
    try:
        data = read_small(root, INDEX_NAME)
    except ObjectMissing:
        raise UsageError(f"no {INDEX_NAME} in {root.describe()}") from None
    return parse_index(data, root.describe(INDEX_NAME), problems)


def _open_revision(root: Location, entry: IndexEntry) -> tuple[str, OpenedPart] | None:
    """``<n>.json`` as the index names it, or ``<n>.json.gz`` if the customer compressed it."""
    for name in (entry.name, entry.name + ".gz"):
        try:
            return name, Input(root, (Part(name, 0),)).open(Part(name, 0))
        except ObjectMissing:
            continue
    return None


@dataclass(frozen=True)
class DayResult:
    files: list[str]  # the revision files read, as named under the root
    lines: int


def input_paths(root: Location, entries: Iterable[IndexEntry]) -> list[Path]:
    """The local files a day's run reads (none for S3): an output must not replace them."""
    names = [INDEX_NAME, *(n for e in entries for n in (e.name, e.name + ".gz"))]
    return [p for p in (root.local_path(n) for n in names) if p is not None]


def day_lines(root: Location, entries: Iterable[IndexEntry], window: DayWindow, out: IO[bytes],
              problems: Problems, on_files: ByteCounter = no_progress) -> DayResult:
    """Write the lines of ``window`` from the revision files of ``entries`` (those of
    ``overlapping``), in order.

    ``on_files(1)`` is called after each file.  A file the index lists but ``root`` lacks is a
    problem (reported, or the end of a strict run)."""
    index_where = root.describe(INDEX_NAME)
    start_s, end_s = window.start_s, window.end_s
    count = 0
    fetched = []
    for entry in entries:
        found = _open_revision(root, entry)
        if found is None:
            problems.add(Problem(index_where, entry.line,
                                 f"{entry.name} is listed but missing from {root.describe()}"))
            on_files(1)
            continue
        name, opened = found
        fetched.append(name)
        with opened:
            for text, line in LineScanner(opened.file, root.describe(name), problems):
                t = line.get(TIME)
                if t is not None and start_s <= t < end_s:
                    out.write(text)
                    out.write(b"\n")
                    count += 1
        on_files(1)
    return DayResult(files=fetched, lines=count)
