"""Streaming CSV records out of a byte stream, with exact byte and line positions.

The import resumes a file from the byte just after the last committed record, so every record
carries the offset where it ends (in the decompressed stream for gzip files).  Lines are read
with a length limit, so a file without newlines never fills memory; bad UTF-8, over-long lines
and malformed quoting become per-record errors instead of stopping the file.

Whatever the bytes, reading is bounded: every ``CHECK_EVERY_BYTES`` read (blank lines and the
dropped rest of over-long lines included) the reader asks its ``over_budget`` callable, and
once it says so ``read()`` raises ``ReadPaused`` at the next record boundary, where the caller
commits its position.  A line or a file (decompressed) past its ``ReadLimits`` fails the whole
file with ``BadFile`` naming the limit.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from shared.errors import BadFile
from shared.formats.csvrows import MAX_FIELD_BYTES
from shared.formats.streams import BOM, GZIP_ERRORS, skip_bytes

MAX_LINE_BYTES = 1024 * 1024  # a longer line is a rejected record
_BLANK = frozenset({b"\n", b"\r\n"})
_BLANK_LINES = re.compile(rb"(?:\r?\n)*")  # slow (per byte): only for mixes with a CR
HEADER_MAX_BYTES = 2 * MAX_LINE_BYTES  # the header row ends within this much of the start
CHECK_EVERY_BYTES = 1024 * 1024  # how often reading asks whether it is over its budget


class ReadPaused(Exception):
    """The budget ran out: the reader stands at a record boundary, every record before
    ``position_bytes`` was returned, none after it was started."""


@dataclass(frozen=True)
class ReadLimits:
    """Past these a file is refused whole (``BadFile``): no budget could ever import it."""

    max_file_bytes: int = 50 * 1024**3  # decompressed
    max_line_bytes: int = 16 * 1024**2  # a physical line; over MAX_LINE_BYTES it is rejected

    def __post_init__(self) -> None:
        if self.max_line_bytes < MAX_LINE_BYTES or self.max_file_bytes < 1:
            raise ValueError(f"limits too small: {self}")


@dataclass(frozen=True, slots=True)
class Record:
    """One CSV record: its cells, or the reason it could not be read."""

    number: int  # data record number in the file, 1-based; the header is record 0
    line: int  # physical line where the record starts, 1-based
    end_byte: int  # offset just past the record's last byte
    end_line: int  # last physical line of the record
    cells: list[str] | None
    error: str | None = None
    error_code: str | None = None  # "malformed", "utf8", "oversized": a metric label


def skip_to(file: IO[bytes], count_bytes: int) -> None:
    """Go forward ``count_bytes`` to resume a file that cannot seek (gzip); ``BadFile`` if
    it is shorter or broken."""
    try:
        skipped = skip_bytes(file, count_bytes)
    except GZIP_ERRORS as exc:
        raise BadFile(f"not a valid gzip file: {exc}") from None
    if skipped < count_bytes:
        raise BadFile(f"file is shorter than its recorded import position ({count_bytes} "
                      "bytes)")


class RecordReader:
    """Iterates the records of a file positioned at ``start_byte`` (a record boundary).

    ``start_line`` and ``start_record`` number the first line and record read from there, so
    a resumed file reports the same numbers as a file read from its start.
    """

    def __init__(self, file: IO[bytes], *, start_byte: int = 0, start_line: int = 1,
                 start_record: int = 0, max_line_bytes: int = MAX_LINE_BYTES,
                 limits: ReadLimits | None = None,
                 over_budget: Callable[[], bool] | None = None) -> None:
        self._file = file
        self._pos = start_byte
        self._limits = limits or ReadLimits()
        self.over_budget = over_budget
        self._paused = False
        self._first_line = start_line  # the first line of the record being read
        self._next_check = self._check_point(start_byte)
        self._line = start_line - 1
        self._next_record = start_record
        self._max_line_bytes = max_line_bytes
        self._strip_bom = start_byte == 0
        self._bad_utf8: set[int] = set()
        self._oversized: set[int] = set()
        # strict: broken quoting is reported as a bad row, never silently mangled into data.
        self._reader = csv.reader(self._text_lines(), strict=True)
        # What ``read()`` last returned: see there.
        self.number = start_record - 1
        self.line = start_line - 1
        self.error: str | None = None
        self.error_code: str | None = None

    @property
    def position_bytes(self) -> int:
        return self._pos

    def _check_point(self, pos: int) -> int:
        return min(pos + CHECK_EVERY_BYTES, self._limits.max_file_bytes + 1)

    def _advance(self, size: int) -> None:
        """Count ``size`` bytes read; every ``CHECK_EVERY_BYTES`` look at the limits and the
        budget (the hot loop inlines the comparison)."""
        self._pos += size
        if self._pos >= self._next_check:
            self._check()

    def _check(self) -> None:
        self._next_check = self._check_point(self._pos)
        if self._pos > self._limits.max_file_bytes:
            raise BadFile(f"file is larger than the limit of {self._limits.max_file_bytes} "
                          "bytes (decompressed)")
        if self.over_budget is not None and not self._paused and self.over_budget():
            self._paused = True

    def _readline(self) -> bytes:
        try:
            return self._file.readline(self._max_line_bytes)
        except GZIP_ERRORS as exc:
            raise BadFile(f"not a valid gzip file: {exc}") from None

    def _text_lines(self) -> Iterator[str]:
        limit = self._max_line_bytes
        while True:
            raw = self._readline()
            if not raw:
                return
            self._line += 1
            size = len(raw)
            if size >= limit and not raw.endswith(b"\n"):
                # Drop the rest of an over-long line without holding it; the record reports it.
                self._advance(size)
                while raw and not raw.endswith(b"\n"):
                    raw = self._readline()
                    size += len(raw)
                    if size > self._limits.max_line_bytes:
                        raise BadFile(f"line {self._line} is longer than the limit of "
                                      f"{self._limits.max_line_bytes} bytes")
                    self._advance(len(raw))
                self._oversized.add(self._line)
                self._strip_bom = False
                yield "\n"
                continue
            self._pos += size
            if self._pos >= self._next_check:
                self._check()
            if self._strip_bom:
                self._strip_bom = False
                if raw.startswith(BOM):
                    raw = raw[len(BOM):]
            if size <= 2 and raw in _BLANK and self._line == self._first_line:
                # A blank line between records: the blank lines right after it are skipped
                # at C speed (a gzip of a GiB of newlines), one csv blank line for them all.
                self._skip_blank_lines()
                yield "\n"
                continue
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self._bad_utf8.add(self._line)
                yield raw.decode("utf-8", "replace")

    def _skip_blank_lines(self) -> None:
        """Consume the blank lines (``\\n`` or ``\\r\\n``) that come next, counting them,
        until other bytes, the end, or a pause."""
        peek = getattr(self._file, "peek", None)
        if peek is None:
            return
        while not self._paused:
            try:
                ahead = peek(CHECK_EVERY_BYTES)[:CHECK_EVERY_BYTES]
                run = len(ahead) - len(ahead.lstrip(b"\r\n"))
                if ahead[:run].endswith(b"\r"):
                    run -= 1  # its LF, if any, is not read yet
                span = ahead[:run]
                if span.count(b"\r") != span.count(b"\r\n"):  # a CR alone is no blank line
                    blank = _BLANK_LINES.match(ahead, 0, run)
                    run = blank.end() if blank else 0
                if not run:
                    return
                skipped = self._file.read(run)
            except GZIP_ERRORS as exc:
                raise BadFile(f"not a valid gzip file: {exc}") from None
            self._line += skipped.count(b"\n")
            self._advance(len(skipped))

    def _flagged(self, first: int, last: int) -> tuple[str, str] | None:
        if self._oversized and any(n in self._oversized for n in range(first, last + 1)):
            return "oversized", f"line longer than {self._max_line_bytes} bytes"
        if self._bad_utf8 and any(n in self._bad_utf8 for n in range(first, last + 1)):
            return "utf8", "invalid UTF-8"
        return None

    def read(self) -> list[str] | None:
        """The next record's cells, or ``None`` when it cannot be read (``error`` says why);
        ``StopIteration`` at the end.

        The hot path of the import: no object per record.  After the call, ``number``,
        ``line``, ``end_line``, ``position_bytes`` and ``error``/``error_code`` describe the
        record just read (the csv module never reads ahead of the record it returns).
        ``ReadPaused`` once the budget ran out (see the module); a later call goes on.
        """
        while True:
            if self._paused:
                self._paused = False
                raise ReadPaused
            first_line = self._line + 1
            start_byte = self._pos
            self.error = self.error_code = None
            self._first_line = first_line
            try:
                cells: list[str] | None = next(self._reader)
            except csv.Error as exc:
                cells, self.error_code, self.error = None, "malformed", f"malformed CSV: {exc}"
                if self._pos - start_byte > MAX_FIELD_BYTES:
                    # The csv module's own field limit tripped: the record is simply too big.
                    self.error_code = "oversized"
                    self.error = f"record of {self._pos - start_byte} bytes has a field over " \
                                 f"the limit of {MAX_FIELD_BYTES} bytes"
            flagged = (self._flagged(first_line, self._line)
                       if self._oversized or self._bad_utf8 else None)
            if cells == [] and flagged is None:
                continue  # blank line
            self.number = self._next_record
            self._next_record += 1
            self.line = first_line
            if flagged is not None:
                cells = None
                self.error_code, self.error = flagged
            elif cells and self._pos - start_byte > MAX_FIELD_BYTES:
                longest = max(len(c.encode("utf-8")) for c in cells)
                if longest > MAX_FIELD_BYTES:
                    cells = None
                    self.error_code = "oversized"
                    self.error = f"field of {longest} bytes (limit {MAX_FIELD_BYTES})"
            return cells

    @property
    def end_line(self) -> int:
        return self._line

    # -- the hook for an engine that converts plain records itself (shared.imports.fastrows) --

    def buffered(self) -> bytes:
        """The bytes after the current record that the file has at hand (one read when it has
        none; ``b""`` at the end, before the header, or when the file is broken: the Python
        path then reads and reports)."""
        peek = getattr(self._file, "peek", None)
        if peek is None or self._strip_bom or self._paused:
            return b""
        try:
            data: bytes = peek(1)
        except GZIP_ERRORS:
            return b""
        return data

    def took(self, size_bytes: int, records: int) -> None:
        """``records`` whole one-line records, the first ``size_bytes`` of ``buffered()``,
        were converted elsewhere: go past them as ``read()`` would have."""
        self._file.read(size_bytes)
        self._advance(size_bytes)  # the file's size limit and the budget, as read() does
        self._line += records
        self._next_record += records
        self.number = self._next_record - 1
        self.line = self._line
        self.error = self.error_code = None

    def __iter__(self) -> Iterator[Record]:
        return self

    def __next__(self) -> Record:
        cells = self.read()
        return Record(number=self.number, line=self.line, end_byte=self._pos,
                      end_line=self._line, cells=cells, error=self.error,
                      error_code=self.error_code)


def read_header(reader: RecordReader) -> Record:
    """Take the header, the first record of a reader started at byte 0; ``BadFile`` if none,
    also when blank lines go on for more than ``HEADER_MAX_BYTES``."""
    budget = reader.over_budget
    reader.over_budget = lambda: reader.position_bytes > HEADER_MAX_BYTES
    try:
        header = next(reader)
    except StopIteration:
        raise BadFile("file is empty: no header row") from None
    except ReadPaused:
        raise BadFile(f"no header row in the first {HEADER_MAX_BYTES} bytes") from None
    finally:
        reader.over_budget = budget
    if header.error_code == "utf8":
        raise BadFile("not a CSV text file: the first line is not valid UTF-8")
    if header.cells is None:
        raise BadFile(f"header row is unreadable: {header.error}")
    return header
