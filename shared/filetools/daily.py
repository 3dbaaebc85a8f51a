"""The events of given UTC days, read through ``index.csv`` so only the files that can hold them
are fetched.

``index.csv`` has one row per exported revision with the minimum and maximum ``_t`` it holds.
A revision is fetched exactly when its ``[min, max]`` overlaps the requested days
``[start, end)``; a row without timestamps holds no timed event and is never fetched.  Of the
fetched files only lines whose ``_t`` falls in the days are written (lines without ``_t`` never
do), in numeric order of the files and file order within each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO

from shared.errors import ObjectMissing, UserError
from shared.filetools.sources import (
    ByteCounter,
    Input,
    Location,
    Part,
    no_progress,
    read_small,
)
from shared.formats.exportfiles import IndexRow, parse_index
from shared.formats.exportlines import TIME, LineScanner, Problem, Problems
from shared.formats.streams import Opened

INDEX_NAME = "index.csv"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
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
        raise UserError(f"invalid {option} {text!r}: expected a UTC date as YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise UserError(f"invalid {option} {text!r}: {exc}") from None


def day_window(on: str | None, first: str | None, last: str | None) -> DayWindow:
    """The window of ``--date`` or of ``--from``/``--to`` (inclusive), exactly one of them."""
    if on is not None:
        if first is not None or last is not None:
            raise UserError("give either --date or --from/--to, not both")
        day = parse_day(on, "--date")
        return DayWindow(day, day)
    if first is None or last is None:
        raise UserError("give --date DAY, or --from DAY and --to DAY")
    window = DayWindow(parse_day(first, "--from"), parse_day(last, "--to"))
    if window.last < window.first:
        raise UserError(f"--from {first} is after --to {last}")
    return window


def overlapping(entries: Iterable[IndexRow], window: DayWindow) -> list[IndexRow]:
    """The entries whose timestamp range meets the window, in numeric order, each number once."""
    chosen = {e.number: e for e in entries if window.overlaps(e.min_t, e.max_t)}
    return [chosen[n] for n in sorted(chosen)]


def index_of(root: Location, problems: Problems) -> list[IndexRow]:
    try:
        data = read_small(root, INDEX_NAME)
    except ObjectMissing:
        raise UserError(f"no {INDEX_NAME} in {root.describe()}") from None
    where = root.describe(INDEX_NAME)
    return parse_index(data, where, lambda line, reason: problems.add(Problem(where, line, reason)))


def _open_revision(root: Location, entry: IndexRow) -> tuple[str, Opened] | None:
    """``<n>.json`` as the index names it, or ``<n>.json.gz`` if the customer compressed it."""
    for name in (entry.filename, entry.filename + ".gz"):
        try:
            return name, Input(root, (Part(name, 0),)).open(Part(name, 0))
        except ObjectMissing:
            continue
    return None


@dataclass(frozen=True)
class DayResult:
    files: list[str]  # the revision files read, as named under the root
    lines: int


def input_paths(root: Location, entries: Iterable[IndexRow]) -> list[Path]:
    """The local files a day's run reads (none for S3): an output must not replace them."""
    names = [INDEX_NAME, *(n for e in entries for n in (e.filename, e.filename + ".gz"))]
    return [p for p in (root.local_path(n) for n in names) if p is not None]


def day_lines(root: Location, entries: Iterable[IndexRow], window: DayWindow, out: IO[bytes],
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
                                 f"{entry.filename} is listed but missing from {root.describe()}"))
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
