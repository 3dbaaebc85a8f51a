"""Property-based tests of the import format: whatever the bytes, every record is converted or
rejected with a reason, and nothing else is raised.  Pure (Hypothesis)."""

from __future__ import annotations

import gzip
import io

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import BadFile
from shared.formats.csvrecords import RecordReader, read_header
from shared.formats.csvrows import Columns, RowRejected, parse_header, row_to_line
from shared.formats.streams import open_stream
from shared.formats.times import MAX_TIMESTAMP_S

pytestmark = pytest.mark.timeout(120)

IMPORT_T = 1_709_251_199
HEADERS = [
    "Identity,Timestamp,Event",
    "Identity,Timestamp,Event,Alias,Prop:Plan",
    "Identity,Alias",
    "Prop:A,Alias,Timestamp,Identity,Note,Prop:B",
]
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Pieces that make CSV readers, number parsers and decoders trip, mixed into random bytes.
_PIECES = [b",", b'"', b'""', b"\r", b"\n", b"\r\n", b"\x00", b"\xef\xbb\xbf", b"\xff", b"\xc3",
           b"\xe2\x82", b"9" * 4_301, b"0" * 50, b"1700000000", b"1700000000000", b"-1", b" ",
           b"=HYPERLINK(\"x\")", b"\xd8\x00", b"\x1f\x8b", b"u", b"E", b"\t", b"\\"]
_TIMESTAMPS = st.one_of(
    st.integers(min_value=-10, max_value=10 * MAX_TIMESTAMP_S).map(str),
    st.integers(min_value=0, max_value=5_000).map(lambda n: "9" * n),
    st.text(max_size=20),
)


def noisy_bytes() -> st.SearchStrategy[bytes]:
    return st.lists(st.one_of(st.sampled_from(_PIECES), st.binary(max_size=30)),
                    max_size=60).map(b"".join)


def check_line(line: dict[str, object]) -> None:
    """What a converted line always is: an identity, a timestamp in range, JSON-encodable."""
    assert isinstance(line["_p"], str) and line["_p"]
    t = line["_t"]
    assert isinstance(t, int) and 0 <= t <= MAX_TIMESTAMP_S
    orjson.loads(orjson.dumps(line))


def convert_or_reject(cells: list[str], columns: Columns) -> None:
    try:
        line = row_to_line(cells, columns, import_time_s=IMPORT_T)
    except RowRejected as rej:
        assert rej.code and rej.reason
        assert len(rej.reason) < 200, "a reason stays short whatever the cell"
    else:
        check_line(line)


@FUZZ
@given(head=st.sampled_from(HEADERS), data=st.data())
def test_row_to_line_converts_or_rejects_any_cells(head: str, data: st.DataObject) -> None:
    # Given any row of text, of the header's width or not, with odd timestamps
    columns = parse_header(head.split(","))
    width = data.draw(st.sampled_from([columns.width, columns.width, 0, columns.width + 1]))
    cells = data.draw(st.lists(st.text(max_size=30), min_size=width, max_size=width))
    if columns.timestamp is not None and width == columns.width:
        cells[columns.timestamp] = data.draw(_TIMESTAMPS)
    # Then it converts or is rejected with a reason; nothing else is raised
    convert_or_reject(cells, columns)


@FUZZ
@given(cells=st.lists(st.text(max_size=20), max_size=8))
def test_parse_header_accepts_or_refuses_with_bad_file(cells: list[str]) -> None:
    try:
        columns = parse_header(cells)
    except BadFile as exc:
        assert exc.reason
    else:
        assert columns.width == len(cells)


def read_everything(data: bytes, *, gzipped: bool) -> int:
    """Read a file as the import does; returns how many records it had.  ``BadFile`` is the
    only error a whole file may raise."""
    with open_stream(io.BytesIO(data), gzipped=gzipped) as opened:
        reader = RecordReader(opened.file, max_line_bytes=256)
        columns = parse_header(read_header(reader).cells or [])
        count = 0
        for record in reader:
            count += 1
            if record.cells is None:
                assert record.error and record.error_code
            else:
                convert_or_reject(record.cells, columns)
        return count


@FUZZ
@given(head=st.sampled_from(HEADERS), body=noisy_bytes())
def test_csv_reader_reads_any_bytes_after_a_header_record_by_record(head: str,
                                                                    body: bytes) -> None:
    # Given a valid header and then any bytes at all
    data = head.encode() + b"\n" + body
    # Then every record is converted or rejected with a reason, and the file is read to its end
    # (at most one record per line, plus one for an unterminated last line)
    assert read_everything(data, gzipped=False) <= data.count(b"\n") + 1


@FUZZ
@given(data=noisy_bytes())
def test_csv_reader_reads_any_bytes_or_refuses_the_file(data: bytes) -> None:
    try:
        read_everything(data, gzipped=False)
    except BadFile as exc:
        assert exc.reason


@FUZZ
@given(head=st.sampled_from(HEADERS), body=noisy_bytes(), cut=st.integers(0, 200),
       flip=st.integers(0, 255))
def test_gzip_reader_reads_any_payload_or_refuses_a_broken_stream(
        head: str, body: bytes, cut: int, flip: int) -> None:
    # Given a gzip of a header and any bytes, perhaps truncated or with one byte changed
    packed = bytearray(gzip.compress(head.encode() + b"\n" + body))
    if cut:
        packed = packed[:max(0, len(packed) - cut)]
    if packed and flip:
        packed[flip % len(packed)] ^= flip
    # Then it reads to its end, or the whole file is refused as a bad file
    try:
        read_everything(bytes(packed), gzipped=True)
    except BadFile as exc:
        assert exc.reason
