"""Line-for-line rewrites of export files: one NDJSON file, a JSON array, aliases apart.

Each streams: one line in memory at a time.  Every valid line is written as it was read, minus
surrounding whitespace, ending with exactly one ``\\n``: no blank line, no CR, no missing newline
at the end.  Bad lines go to ``problems`` (reported and skipped, or the end of a strict run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from shared.filetools.sources import ByteCounter, Input, no_progress
from shared.formats.exportlines import ALIAS, Problems


def compile_lines(inp: Input, out: IO[bytes], problems: Problems,
                  on_bytes: ByteCounter = no_progress) -> int:
    """Write every valid line of ``inp``'s files, in their order, as one NDJSON stream."""
    write = out.write
    count = 0
    for text, _line in inp.lines(problems, on_bytes):
        write(text)
        write(b"\n")
        count += 1
    return count


def to_json_array(inp: Input, out: IO[bytes], problems: Problems,
                  on_bytes: ByteCounter = no_progress) -> int:
    """Write the valid lines as one standard JSON array, one element per line."""
    write = out.write
    count = 0
    for text, _line in inp.lines(problems, on_bytes):
        write(b"[\n" if count == 0 else b",\n")
        write(text)
        count += 1
    write(b"[]\n" if count == 0 else b"\n]\n")
    return count


@dataclass(frozen=True)
class SplitCounts:
    aliases: int
    others: int


def split_aliases(inp: Input, aliases_out: IO[bytes], others_out: IO[bytes],
                  problems: Problems, on_bytes: ByteCounter = no_progress) -> SplitCounts:
    """Lines with ``_p2`` (aliases) to ``aliases_out``, every other line to ``others_out``."""
    aliases = others = 0
    for text, line in inp.lines(problems, on_bytes):
        if ALIAS in line:
            aliases_out.write(text)
            aliases_out.write(b"\n")
            aliases += 1
        else:
            others_out.write(text)
            others_out.write(b"\n")
            others += 1
    return SplitCounts(aliases=aliases, others=others)
