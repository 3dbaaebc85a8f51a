"""Export lines read from a byte stream: validation, positions, and what happens to bad lines.

An export line is one JSON object per line,
``{"_p": identity, "_t": unix_s, "_n": event, "_p2": alias, "<prop>": value}``, keys absent
when empty.  Reading is bounded: a line is read with a length limit, so a file without newlines
never fills memory.  A bad line (unparsable, not an object, no identity, blank, too long) is a
``Problem`` with its line number; ``Problems`` decides whether the run goes on (report and skip)
or stops (``--strict``: ``MalformedInput``, exit status 2).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

from shared.errors import UserError
from shared.formats.streams import BOM

MAX_LINE_BYTES = 8 * 1024 * 1024

IDENTITY = "_p"
TIME = "_t"
EVENT = "_n"
ALIAS = "_p2"
RESERVED_KEYS = (IDENTITY, ALIAS, TIME, EVENT)

Line = dict[str, Any]
LineCheck = Callable[[Line], str | None]
# gzip.BadGzipFile is an OSError; a truncated stream raises EOFError.
_STREAM_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True, slots=True)
class Problem:
    """A line (or the rest of a file) that was not used, and why."""

    where: str  # the file, as the user named it
    line: int  # 1-based physical line number in the (decompressed) file
    reason: str

    def __str__(self) -> str:
        return f"{self.where} line {self.line}: {self.reason}"


class MalformedInput(UserError):
    """A malformed line under ``--strict``: the run stops at the first one."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class Problems:
    """Where bad lines go.  Strict: the first raises ``MalformedInput``.  Otherwise each is
    counted and handed to ``report`` and the run goes on."""

    def __init__(self, strict: bool = False,
                 report: Callable[[Problem], None] = lambda _p: None) -> None:
        self.strict = strict
        self.report = report
        self.count = 0

    def add(self, problem: Problem) -> None:
        self.count += 1
        if self.strict:
            raise MalformedInput(problem)
        self.report(problem)

    @classmethod
    def silenced(cls) -> Problems:
        """For a second pass over an input whose first pass reported its problems already."""
        return cls(strict=False)


class BadLine(Exception):
    """This line is skipped (and reported); the rest of the file goes on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def parse_line(raw: bytes) -> Line:
    """The export line in ``raw`` (one line, without its newline); ``BadLine`` if it is not one.

    Rules: a JSON object; ``_p`` a non-empty string; ``_p2``, when present, a non-empty string;
    ``_n`` a string; ``_t`` an integer (Unix seconds).
    """
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadLine(f"bad JSON: {exc}") from None
    if type(line) is not dict:
        raise BadLine(f"not a JSON object ({_kind(line)})")
    identity = line.get(IDENTITY)
    if type(identity) is not str or not identity:
        raise BadLine("missing _p (identity)" if identity is None
                      else "_p (identity) is not a non-empty string")
    t = line.get(TIME)
    if t is not None and type(t) is not int:
        raise BadLine(f"_t is not an integer number of seconds: {orjson.dumps(t).decode()}")
    alias = line.get(ALIAS)
    if alias is not None and (type(alias) is not str or not alias):
        raise BadLine("_p2 (alias) is not a non-empty string")
    event = line.get(EVENT)
    if event is not None and type(event) is not str:
        raise BadLine("_n (event) is not a string")
    return line


class LineScanner:
    """Iterates the valid lines of a file positioned at ``start_byte`` (a line boundary).

    Yields ``(text, line)``: the line's bytes without surrounding whitespace (nor a UTF-8 BOM
    at the start of the file), and the parsed object.  Bad lines go to ``problems``; ``check``
    may reject a valid line for a command's own reason.  After each yield, ``line_number`` and
    ``position_bytes`` describe the line just yielded; once the iteration ends they describe
    the end of the file (or the place where an unreadable compressed stream stopped).
    """

    def __init__(self, file: IO[bytes], where: str, problems: Problems, *,
                 start_line: int = 1, start_byte: int = 0, check: LineCheck | None = None,
                 max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._file = file
        self.where = where
        self._problems = problems
        self._check = check
        self._max_line_bytes = max_line_bytes
        self.line_number = start_line - 1
        self.position_bytes = start_byte

    def _reject(self, reason: str) -> None:
        self._problems.add(Problem(self.where, self.line_number, reason))

    def __iter__(self) -> Iterator[tuple[bytes, Line]]:
        readline = self._file.readline
        limit = self._max_line_bytes
        check = self._check
        first = self.position_bytes == 0  # a file saved with a UTF-8 BOM: drop it
        while True:
            try:
                raw = readline(limit)
            except _STREAM_ERRORS as exc:
                self.line_number += 1
                self._reject(f"unreadable from here on, the rest of the file is skipped "
                             f"(not a valid gzip stream: {exc})")
                return
            if not raw:
                return
            self.line_number += 1
            self.position_bytes += len(raw)
            if len(raw) >= limit and not raw.endswith(b"\n"):
                self._drain()
                self._reject(f"line longer than {limit} bytes")
                continue
            text = raw.strip()
            if first:
                first = False
                text = text.removeprefix(BOM)
            if not text:
                self._reject("blank line")
                continue
            try:
                line = parse_line(text)
            except BadLine as exc:
                self._reject(exc.reason)
                continue
            if check is not None:
                reason = check(line)
                if reason is not None:
                    self._reject(reason)
                    continue
            yield text, line

    def _drain(self) -> None:
        """Skip the rest of an over-long line without holding it."""
        while True:
            try:
                raw = self._file.readline(self._max_line_bytes)
            except _STREAM_ERRORS:
                return  # the next read reports the broken stream
            self.position_bytes += len(raw)
            if not raw or raw.endswith(b"\n"):
                return
