"""Export lines as CSV: fixed columns, then every property in first-seen order.  Streams.

Columns are ``_p, _p2, _t, _n`` and then each property name in the order it first appears in the
input.  Two passes: the first collects the names (memory grows with the number of distinct
names, never with lines), the second writes the rows.  A source that is not all local files
(``s3://…``) is read once: the first pass keeps its valid lines in a temporary local file, which
the second pass reads.

Unless ``raw``, text a spreadsheet would run as a formula (header cells included) is
neutralised (``shared.formats.cells``).  A row with a CR in a cell is quoted whole, so every
CSV reader splits it as written.  JSON numbers, ``true``/``false`` and nested values are
written as JSON text; ``null`` as empty.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson

from shared.errors import PermanentError
from shared.filetools.sources import ByteCounter, Input, no_progress
from shared.formats.cells import FORMULA_TRIGGERS, CsvWriter, neutralise
from shared.formats.exportlines import RESERVED_KEYS, Line, Problems, parse_line


class InputChanged(PermanentError):
    """The input changed between the two passes of a conversion."""


def render(value: Any, raw: bool = False) -> str:
    """One cell: text as it is (neutralised unless ``raw``); anything else as JSON text."""
    if type(value) is str:
        return value if raw else neutralise(value)
    if value is None:
        return ""
    return orjson.dumps(value).decode("utf-8")


def collect_properties(lines: Iterable[Line]) -> list[str]:
    """Property names in first-seen order (the reserved keys excluded)."""
    seen: dict[str, None] = dict.fromkeys(RESERVED_KEYS)
    seen_keys = seen.keys()
    for line in lines:
        if not line.keys() <= seen_keys:  # a C-speed check; most lines add nothing
            for key in line:
                if key not in seen:
                    seen[key] = None
    return list(seen)[len(RESERVED_KEYS):]


def header(properties: list[str], raw: bool = False) -> list[str]:
    return [*RESERVED_KEYS, *(name if raw else neutralise(name) for name in properties)]


def write_rows(lines: Iterable[Line], properties: list[str], out: IO[str],
               raw: bool = False) -> int:
    """Write the header and one row per line; returns the number of rows."""
    index = {name: i for i, name in enumerate((*RESERVED_KEYS, *properties))}
    width = len(index)
    writer = CsvWriter(out)
    writer.writerow(header(properties, raw))
    writerow = writer.writerow_checked
    triggers = FORMULA_TRIGGERS
    count = 0
    for line in lines:
        row = [""] * width
        has_cr = False
        try:
            for key, value in line.items():
                if type(value) is not str:
                    row[index[key]] = render(value)  # JSON text: a CR is escaped
                    continue
                if "\r" in value:
                    has_cr = True
                if not raw and value[:1] in triggers:
                    row[index[key]] = neutralise(value)
                else:
                    row[index[key]] = value
        except KeyError as exc:
            raise InputChanged(f"the input changed while it was being converted (property "
                               f"{exc.args[0]!r} was not there in the first pass)") from None
        writerow(row, has_cr)
        count += 1
    return count


def to_csv(inp: Input, out: IO[bytes], problems: Problems, raw: bool = False,
           on_bytes_first: ByteCounter = no_progress,
           on_bytes_second: ByteCounter = no_progress) -> int:
    """Convert ``inp`` to CSV (UTF-8) on ``out`` in two streaming passes; returns the rows.

    Local files are read twice; any other source once, its valid lines kept meanwhile in a
    temporary file (deleted on return)."""
    if len(inp.local_paths()) == len(inp.parts):
        properties = collect_properties(
            line for _text, line in inp.lines(problems, on_bytes_first))
        return _write(out, (line for _text, line in inp.lines(Problems.silenced(),
                                                                 on_bytes_second)),
                      properties, raw)
    with tempfile.TemporaryFile(prefix="bucketbridge-to-csv-") as spill:
        properties = collect_properties(_spilled(inp.lines(problems, on_bytes_first), spill))
        spill.seek(0)
        return _write(out, _respilled(spill, inp.total_bytes, on_bytes_second), properties, raw)


def _spilled(lines: Iterable[tuple[bytes, Line]], spill: IO[bytes]) -> Iterator[Line]:
    write = spill.write
    for text, line in lines:
        write(text)
        write(b"\n")
        yield line


def _respilled(spill: IO[bytes], total_bytes: int, on_bytes: ByteCounter) -> Iterator[Line]:
    """The lines kept by ``_spilled``; progress in the source's bytes, for the same bar."""
    size = spill.seek(0, io.SEEK_END)
    spill.seek(0)
    scale = total_bytes / size if size else 0.0
    done = reported = 0
    for text in spill:
        done += len(text)
        if done - reported >= 1 << 20:
            on_bytes(int((done - reported) * scale))
            reported = done
        yield parse_line(text.rstrip(b"\n"))
    on_bytes(int((done - reported) * scale))


def _write(out: IO[bytes], lines: Iterable[Line], properties: list[str], raw: bool) -> int:
    text_out = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    try:
        return write_rows(lines, properties, text_out, raw)
    finally:
        text_out.flush()
        text_out.detach()
