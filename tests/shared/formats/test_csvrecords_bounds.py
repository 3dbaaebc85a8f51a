"""Reading is bounded whatever the bytes: the budget is asked every MiB read (blank lines and
over-long lines included) and the reader pauses at a record boundary; a line or a file past its
limit fails the file.  Pure."""

from __future__ import annotations

import gzip
import io

import pytest

from shared.errors import BadFile
from shared.formats.csvrecords import (
    CHECK_EVERY_BYTES,
    HEADER_MAX_BYTES,
    MAX_LINE_BYTES,
    ReadLimits,
    ReadPaused,
    RecordReader,
    read_header,
)
from shared.formats.streams import open_stream
from tests.bombs import MiB, gzip_stream, repeated

pytestmark = pytest.mark.timeout(60)

HEADER = b"Identity,Timestamp,Event\n"


def reader(data: bytes, *, gzipped: bool = False, start_byte: int = 0, start_line: int = 1,
           start_record: int = 0, **kwargs: object) -> RecordReader:
    file = open_stream(io.BytesIO(data[start_byte:] if not gzipped else data),
                       gzipped=gzipped).file
    return RecordReader(file, start_byte=start_byte, start_line=start_line,
                        start_record=start_record, **kwargs)  # type: ignore[arg-type]


class Calls:
    """An ``over_budget`` that says yes from its ``after``-th call on, counting calls."""

    def __init__(self, after: int = 1) -> None:
        self.after = after
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.after


def test_blank_lines_pause_at_a_boundary_and_a_resumed_reader_goes_on() -> None:
    # Given a header, a row, 5 MiB of blank lines, and a row
    blank = 5 * MiB
    data = HEADER + b"u1,1,E\n" + b"\n" * blank + b"u2,2,E\n"
    budget = Calls()
    r = reader(data, over_budget=budget)
    read_header(r)
    assert r.read() == ["u1", "1", "E"]
    # When the budget runs out within the blank lines
    with pytest.raises(ReadPaused):
        r.read()
    # Then the reader stopped after about a MiB of them, at the end of a blank line
    paused_at = r.position_bytes
    assert CHECK_EVERY_BYTES <= paused_at < 2 * CHECK_EVERY_BYTES
    assert data[paused_at - 1:paused_at] == b"\n"
    assert budget.calls == 1
    # And a reader resumed there reads the next record with its right numbers
    rest = reader(data, start_byte=paused_at, start_line=r.end_line + 1, start_record=2)
    records = list(rest)
    assert [(x.number, x.line, x.cells) for x in records] == [(2, 3 + blank, ["u2", "2", "E"])]


def test_a_paused_reader_goes_on_when_called_again() -> None:
    # Given a budget that runs out once, within blank lines
    data = HEADER + b"\n" * (3 * MiB) + b"u1,1,E\n"
    answers = iter([True])
    r = reader(data, over_budget=lambda: next(answers, False))
    read_header(r)
    with pytest.raises(ReadPaused):
        r.read()
    # Then reading again goes on from there
    assert r.read() == ["u1", "1", "E"]


def test_pause_during_a_record_waits_for_its_end() -> None:
    # Given rows of 50 KB each: the budget check falls inside one of them
    rows = [f"u{n},{n},{'x' * 50_000}\n".encode() for n in range(1, 61)]
    data = HEADER + b"".join(rows)
    r = reader(data, over_budget=Calls())
    read_header(r)
    seen = []
    with pytest.raises(ReadPaused):
        while True:
            cells = r.read()
            assert cells is not None
            seen.append(cells[0])
    # Then the pause comes after a whole record, never inside one
    ends = [len(HEADER) + sum(len(x) for x in rows[:n]) for n in range(1, 61)]
    assert r.position_bytes in ends
    assert seen == [f"u{n}" for n in range(1, len(seen) + 1)]
    assert r.position_bytes >= CHECK_EVERY_BYTES


def test_without_a_budget_blank_lines_are_skipped_to_the_end() -> None:
    data = HEADER + b"\n" * (3 * MiB) + b"u1,1,E\n"
    r = reader(data)
    read_header(r)
    assert [x.cells for x in r] == [["u1", "1", "E"]]


def test_over_long_line_within_the_limit_is_a_rejected_record() -> None:
    data = HEADER + b"u1,1," + b"z" * (3 * MiB) + b"\nu2,2,E\n"
    r = reader(data, limits=ReadLimits(max_line_bytes=4 * MiB))
    read_header(r)
    assert [(x.cells, x.error_code) for x in r] == [(None, "oversized"),
                                                    (["u2", "2", "E"], None)]


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_line_past_the_line_limit_fails_the_file(gzipped: bool) -> None:
    # Given one endless line (8 MiB, the limit 2 MiB)
    body = HEADER + b"u1,1,E\n" + b"y" * (8 * MiB)
    data = gzip.compress(body) if gzipped else body
    r = reader(data, gzipped=gzipped, limits=ReadLimits(max_line_bytes=2 * MiB))
    read_header(r)
    assert r.read() == ["u1", "1", "E"]
    # Then reading it fails the file, naming the line and the limit, having read little more
    with pytest.raises(BadFile) as raised:
        r.read()
    assert raised.value.reason == f"line 3 is longer than the limit of {2 * MiB} bytes"
    assert r.position_bytes <= len(HEADER) + 7 + 3 * MiB


def test_a_file_past_the_size_limit_fails_whole() -> None:
    # Given a gzip that inflates to 6 MiB of rows, the limit 4 MiB
    row = b"u1,1,E\n"
    data = gzip.compress(HEADER + row * (6 * MiB // len(row)))
    r = reader(data, gzipped=True, limits=ReadLimits(max_file_bytes=4 * MiB))
    read_header(r)
    with pytest.raises(BadFile) as raised:
        for _ in r:
            pass
    assert raised.value.reason == f"file is larger than the limit of {4 * MiB} bytes " \
                                  "(decompressed)"
    # (stopped at the limit, not later)
    assert 4 * MiB < r.position_bytes <= 4 * MiB + MAX_LINE_BYTES


def test_a_file_exactly_at_the_size_limit_is_read() -> None:
    data = HEADER + b"u1,1,E\n"
    r = reader(data, limits=ReadLimits(max_file_bytes=MAX_LINE_BYTES))
    read_header(r)
    assert [x.cells for x in r] == [["u1", "1", "E"]]


def test_blank_lines_before_the_header_end_with_a_bad_file() -> None:
    # Given a gzip of endless blank lines (no header ever)
    data = gzip.compress(b"\n" * (64 * MiB))
    r = reader(data, gzipped=True, over_budget=Calls(after=10**9))
    # Then the header search stops after HEADER_MAX_BYTES or so
    with pytest.raises(BadFile) as raised:
        read_header(r)
    assert raised.value.reason == f"no header row in the first {HEADER_MAX_BYTES} bytes"
    assert r.position_bytes <= HEADER_MAX_BYTES + CHECK_EVERY_BYTES


def test_limits_below_a_record_line_are_refused() -> None:
    with pytest.raises(ValueError, match="limits too small"):
        ReadLimits(max_line_bytes=MAX_LINE_BYTES - 1)


def test_blank_lines_inside_a_quoted_field_are_kept_as_data() -> None:
    # Given a quoted field holding blank lines, and blank lines between records
    data = HEADER + b'u1,1,"a\n\n\r\n\nb"\n\n\r\n\n' + b"u2,2,E\n"
    r = reader(data)
    read_header(r)
    # Then the field keeps every newline, and line numbers count every blank line
    assert [(x.cells, x.line, x.end_line) for x in r] == [
        (["u1", "1", "a\n\n\r\n\nb"], 2, 6), (["u2", "2", "E"], 10, 10)]


@pytest.mark.parametrize("blank", [b"\n", b"\r\n"])
def test_a_gzip_of_a_quarter_gib_of_blank_lines_reads_in_seconds(blank: bytes) -> None:
    # Given a gzip bomb: a header, 256 MiB of blank lines, a row
    count = 256 * MiB // len(blank)
    data = gzip_stream(repeated(HEADER, blank, 256 * MiB, b"u1,1,E\n"))
    r = reader(data, gzipped=True)
    read_header(r)
    # Then the row is found, on its right line
    assert [(x.cells, x.line) for x in r] == [(["u1", "1", "E"], count + 2)]
