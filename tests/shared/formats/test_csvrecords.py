"""Streaming CSV records with exact positions, per-record errors, gzip and resuming.  Pure."""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass

import pytest

from shared.errors import BadFile
from shared.formats.csvrecords import Record, RecordReader, read_header, skip_to
from shared.formats.csvrows import MAX_FIELD_BYTES
from shared.formats.streams import BOM, open_stream

pytestmark = pytest.mark.timeout(60)

SMALL_LINE_BYTES = 64


def read_all(data: bytes, *, gzipped: bool = False, **kwargs: int) -> list[Record]:
    return list(RecordReader(open_stream(io.BytesIO(data), gzipped=gzipped).file, **kwargs))


def resume_after(data: bytes, record: Record, *, gzipped: bool = False,
                 **kwargs: int) -> list[Record]:
    """Read on from just after ``record`` the way the importer does: uncompressed files from a
    ranged read, gzip files by decompressing and dropping the bytes already read."""
    if gzipped:
        file = open_stream(io.BytesIO(data), gzipped=True).file
        skip_to(file, record.end_byte)
    else:
        file = open_stream(io.BytesIO(data[record.end_byte:]), gzipped=False).file
    reader = RecordReader(file, start_byte=record.end_byte, start_line=record.end_line + 1,
                          start_record=record.number + 1, **kwargs)
    return list(reader)


def summary(records: list[Record]) -> list[tuple[int, int, int, int, object]]:
    return [(r.number, r.line, r.end_line, r.end_byte, r.cells if r.cells is not None
             else r.error_code) for r in records]


# -- the tricky file, built from pieces whose positions we know ----------------------------------


@dataclass(frozen=True)
class Piece:
    raw: bytes
    lines: int  # physical lines the piece spans
    expect: list[str] | str | None  # cells, an error code, or None for blank lines


TRICKY = [
    Piece(BOM + b"Identity,Timestamp,Event,Prop:Note\r\n", 1,
          ["Identity", "Timestamp", "Event", "Prop:Note"]),
    Piece(b'u1,1,"a, b","say ""hi"""\r\n', 1, ["u1", "1", "a, b", 'say "hi"']),
    Piece(b"\r\n", 1, None),
    Piece(b'u2,2,E,"line1\nline2\r\nline3"\n', 3, ["u2", "2", "E", "line1\nline2\r\nline3"]),
    Piece(b"\n\n", 2, None),
    Piece(b"u3,3,E,caf\xe9\n", 1, "utf8"),
    Piece(b"x" * 100 + b"\n", 1, "oversized"),
    Piece(b"u4,4,E,a\rb\n", 1, "malformed"),
    Piece(b'u5,5,"multi\n' + b"y" * 100 + b'\nend",n\n', 3, "oversized"),
    Piece(BOM + b"u6,6,E,\xc3\xa9t\xc3\xa9\n", 1, ["\ufeffu6", "6", "E", "été"]),
    Piece(b'u7,7,"",""\n', 1, ["u7", "7", "", ""]),
    Piece(b"u8,8,E,last", 1, ["u8", "8", "E", "last"]),
]


def tricky_bytes() -> bytes:
    return b"".join(p.raw for p in TRICKY)


def tricky_expected() -> list[tuple[int, int, int, int, object]]:
    out = []
    offset, line, number = 0, 1, 0
    for p in TRICKY:
        offset += len(p.raw)
        if p.expect is not None:
            out.append((number, line, line + p.lines - 1, offset, p.expect))
            number += 1
        line += p.lines
    return out


def test_tricky_file_reads_with_exact_numbers_lines_and_offsets() -> None:
    # Given a file with a BOM, quoting, CRLF, blank lines, bad UTF-8 and over-long lines
    data = tricky_bytes()
    # When it is read with a small line limit
    reader = RecordReader(open_stream(io.BytesIO(data), gzipped=False).file,
                          max_line_bytes=SMALL_LINE_BYTES)
    records = list(reader)
    # Then every record has its number, first and last line, end offset, and cells or error
    assert summary(records) == tricky_expected()
    assert reader.position_bytes == len(data)


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_resuming_after_any_record_gives_the_same_rest(gzipped: bool) -> None:
    # Given the tricky file (plain or gzipped) and its records read from the start
    plain = tricky_bytes()
    data = gzip.compress(plain) if gzipped else plain
    full = read_all(data, gzipped=gzipped, max_line_bytes=SMALL_LINE_BYTES)
    assert len(full) == len(tricky_expected())
    for k, record in enumerate(full):
        # When reading resumes just after record k
        rest = resume_after(data, record, gzipped=gzipped, max_line_bytes=SMALL_LINE_BYTES)
        # Then exactly the same records follow, with the same numbers, lines and offsets
        assert rest == full[k + 1:], f"resuming after record {record.number}"


def test_resuming_at_the_end_reads_nothing() -> None:
    data = b"Identity,Timestamp\nu,1\n"
    last = read_all(data)[-1]
    assert last.end_byte == len(data)
    assert resume_after(data, last) == []


# -- quoting and line endings --------------------------------------------------------------------


def test_quoted_commas_and_doubled_quotes() -> None:
    records = read_all(b'a,b,c\n"x, y","say ""hi""",""\n')
    assert records[1].cells == ["x, y", 'say "hi"', ""]


def test_newlines_inside_quotes_make_one_record_over_several_lines() -> None:
    # Given a record whose quoted field spans three lines, then a normal record
    data = b'a,b\n"one\ntwo\nthree",x\nc,d\n'
    # When read
    records = read_all(data)
    # Then the record starts on line 2 and ends on line 4, just past its last newline
    assert summary(records) == [
        (0, 1, 1, 4, ["a", "b"]),
        (1, 2, 4, data.index(b"c,d"), ["one\ntwo\nthree", "x"]),
        (2, 5, 5, len(data), ["c", "d"]),
    ]


def test_crlf_line_endings() -> None:
    data = b"a,b\r\nc,d\r\n\"e\r\nf\",g\r\n"
    assert summary(read_all(data)) == [
        (0, 1, 1, 5, ["a", "b"]),
        (1, 2, 2, 10, ["c", "d"]),
        (2, 3, 4, len(data), ["e\r\nf", "g"]),
    ]


def test_last_line_without_newline() -> None:
    data = b"a,b\nc,d"
    assert summary(read_all(data)) == [(0, 1, 1, 4, ["a", "b"]), (1, 2, 2, 7, ["c", "d"])]


def test_blank_lines_are_skipped_but_counted_as_lines() -> None:
    # Given blank lines (LF and CRLF) before, between and after records
    data = b"\n\r\na,b\n\n\nc,d\n\r\n\n"
    # When read
    records = read_all(data)
    # Then blank lines make no record and take no record number, but lines stay physical
    assert summary(records) == [(0, 3, 3, 7, ["a", "b"]), (1, 6, 6, 13, ["c", "d"])]


def test_malformed_csv_bare_carriage_return_is_an_error_record_and_reading_goes_on() -> None:
    data = b"a,b,c\nu1,x\ry,z\nu2,ok,z\n"
    records = read_all(data)
    assert records[1].cells is None
    assert records[1].error_code == "malformed"
    assert records[1].error is not None and records[1].error.startswith("malformed CSV: ")
    assert (records[2].number, records[2].line, records[2].cells) == (2, 3, ["u2", "ok", "z"])


def test_stray_quote_inside_a_quoted_field_is_malformed_not_silently_mangled() -> None:
    # Given a quoted field with an unescaped quote inside it, then a good row
    data = b'Identity,Timestamp,Event\nu1,1,"Signed "Up"\nu2,2,E2\n'
    # When read
    records = read_all(data)
    # Then the bad row is an error record, not cells with a mangled value
    assert records[1].cells is None, records[1]
    assert records[1].error_code == "malformed"
    assert (records[1].line, records[1].end_line) == (2, 2)
    # And the next row is read as usual
    assert (records[2].number, records[2].line, records[2].cells) == (2, 3, ["u2", "2", "E2"])


def test_quote_left_open_at_end_of_file_is_malformed() -> None:
    # Given a last row that opens a quote and never closes it
    data = b'Identity,Timestamp,Event\nu1,1,E1\nu2,2,"E2\n'
    # When read
    records = read_all(data)
    # Then the good row is read and the unterminated one is an error record
    assert records[1].cells == ["u1", "1", "E1"]
    assert len(records) == 3
    assert records[2].cells is None, records[2]
    assert records[2].error_code == "malformed"


# -- BOM -----------------------------------------------------------------------------------------


def test_bom_is_stripped_at_byte_zero() -> None:
    records = read_all(BOM + b"Identity,Timestamp\nu,1\n")
    assert records[0].cells == ["Identity", "Timestamp"]
    # the BOM still counts in the byte offsets
    assert records[0].end_byte == len(BOM) + len(b"Identity,Timestamp\n")


def test_bom_elsewhere_is_kept() -> None:
    records = read_all(b"a,b\n" + BOM + b"c,d\n")
    assert records[1].cells == ["\ufeffc", "d"]


def test_bom_at_a_resume_position_is_kept() -> None:
    # Given a reader that starts mid-file, at a line beginning with a BOM
    file = open_stream(io.BytesIO(BOM + b"c,d\n"), gzipped=False).file
    # When read from that position
    records = list(RecordReader(file, start_byte=10, start_line=3, start_record=2))
    # Then the BOM is data, as it would be when reading from byte 0
    assert summary(records) == [(2, 3, 3, 10 + len(BOM) + 4, ["\ufeffc", "d"])]


def test_bom_only_file_has_no_header() -> None:
    reader = RecordReader(open_stream(io.BytesIO(BOM), gzipped=False).file)
    with pytest.raises(BadFile, match="file is empty: no header row"):
        read_header(reader)


# -- bad bytes and sizes -------------------------------------------------------------------------


def test_invalid_utf8_row_is_an_error_record_and_later_rows_read() -> None:
    # Given a row with Latin-1 bytes between good rows
    data = b"a,b\nc,d\nr\xe9sum\xe9,x\ne,f\n"
    # When read
    records = read_all(data)
    # Then that row is an error record with code utf8, and the rest reads normally
    assert summary(records) == [
        (0, 1, 1, 4, ["a", "b"]),
        (1, 2, 2, 8, ["c", "d"]),
        (2, 3, 3, 17, "utf8"),
        (3, 4, 4, 21, ["e", "f"]),
    ]
    assert records[2].error == "invalid UTF-8"


def test_invalid_utf8_inside_a_multiline_record_flags_the_whole_record() -> None:
    data = b'a,b\n"x\n\xff\xfe",y\nc,d\n'
    records = read_all(data)
    assert summary(records) == [(0, 1, 1, 4, ["a", "b"]), (1, 2, 3, 13, "utf8"),
                                (2, 4, 4, 17, ["c", "d"])]


def test_valid_multibyte_utf8_is_read() -> None:
    records = read_all("a,b\nM\u00fcnchen,\u6771\u4eac \U0001f680\n".encode())
    assert records[1].cells == ["M\u00fcnchen", "\u6771\u4eac \U0001f680"]


class LineSpy(io.BufferedIOBase):
    """A line source that remembers the longest line it handed out."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.longest_bytes = 0

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> bytes:
        line = self._inner.readline(size)
        self.longest_bytes = max(self.longest_bytes, len(line))
        return line


def test_over_long_line_is_an_error_record_and_never_held_whole() -> None:
    # Given a 200 kB line without a newline in it, between good rows
    data = b"a,b\nc,d\n" + b"q" * 200_000 + b"\ne,f\n"
    spy = LineSpy(data)
    # When read with a 64-byte line limit
    records = list(RecordReader(spy, max_line_bytes=SMALL_LINE_BYTES))
    # Then the long line is one error record with code oversized, and the rest reads normally
    assert summary(records) == [
        (0, 1, 1, 4, ["a", "b"]),
        (1, 2, 2, 8, ["c", "d"]),
        (2, 3, 3, 200_009, "oversized"),
        (3, 4, 4, 200_013, ["e", "f"]),
    ]
    assert records[2].error == f"line longer than {SMALL_LINE_BYTES} bytes"
    # And no line longer than the limit was ever read in one piece
    assert spy.longest_bytes <= SMALL_LINE_BYTES


def test_over_long_last_line_without_newline() -> None:
    data = b"a,b\n" + b"q" * 1000
    assert summary(read_all(data, max_line_bytes=SMALL_LINE_BYTES)) == [
        (0, 1, 1, 4, ["a", "b"]), (1, 2, 2, len(data), "oversized")]


def test_line_just_under_the_limit_is_read() -> None:
    line = b"a," + b"b" * (SMALL_LINE_BYTES - 4) + b"\n"  # limit - 1 bytes, newline included
    records = read_all(b"x,y\n" + line, max_line_bytes=SMALL_LINE_BYTES)
    assert records[1].cells == ["a", "b" * (SMALL_LINE_BYTES - 4)]


def test_field_bigger_than_the_field_limit_is_oversized() -> None:
    # Given a field one byte over MAX_FIELD_BYTES, on a line well under the line limit
    big = b"z" * (MAX_FIELD_BYTES + 1)
    data = b"a,b\nu," + big + b"\nc,d\n"
    # When read
    records = read_all(data)
    # Then that record is an oversized error, and the rest reads normally
    assert summary(records) == [
        (0, 1, 1, 4, ["a", "b"]),
        (1, 2, 2, len(data) - 4, "oversized"),
        (2, 3, 3, len(data), ["c", "d"]),
    ]
    assert records[1].error == f"field of {MAX_FIELD_BYTES + 1} bytes (limit {MAX_FIELD_BYTES})"


def test_field_limit_counts_utf8_bytes_not_characters() -> None:
    # 40 000 "é" are 80 000 bytes: over the limit although under it in characters
    data = b"a,b\nu," + "é".encode() * 40_000 + b"\n"
    assert read_all(data)[1].error_code == "oversized"


def test_field_of_exactly_the_limit_is_read() -> None:
    big = "z" * MAX_FIELD_BYTES
    records = read_all(f"a,b\nu,{big}\n".encode())
    assert records[1].cells == ["u", big]


def test_much_bigger_field_is_oversized_too() -> None:
    # Given a 200 kB field: over MAX_FIELD_BYTES and over the csv module's own field limit
    data = b"a,b\nu," + b"z" * 200_000 + b"\nc,d\n"
    # When read
    records = read_all(data)
    # Then it is still reported as oversized, and the next row reads normally
    assert records[1].cells is None
    assert records[1].error_code == "oversized", records[1].error
    assert (records[2].line, records[2].cells) == (3, ["c", "d"])


# -- gzip ----------------------------------------------------------------------------------------


def test_gzip_input_reads_like_plain_with_decompressed_offsets() -> None:
    plain = b"Identity,Timestamp\r\nu1,1\n\"u\n2\",2\n"
    assert read_all(gzip.compress(plain), gzipped=True) == read_all(plain)


def test_gzip_of_several_members_reads_through() -> None:
    data = gzip.compress(b"a,b\nc,d\n") + gzip.compress(b"e,f\n")
    assert [r.cells for r in read_all(data, gzipped=True)] == [["a", "b"], ["c", "d"],
                                                               ["e", "f"]]


def test_truncated_gzip_is_a_bad_file() -> None:
    # Given a gzip file cut off halfway
    whole = gzip.compress(b"a,b\n" + b"".join(b"u%d,%d\n" % (i, i) for i in range(5000)))
    reader = RecordReader(open_stream(io.BytesIO(whole[: len(whole) // 2]), gzipped=True).file)
    # When read to its end
    with pytest.raises(BadFile) as raised:
        list(reader)
    # Then the file is bad, for a reason that says so
    assert raised.value.reason.startswith("not a valid gzip file: ")


def test_gzip_cut_before_its_trailer_is_a_bad_file() -> None:
    whole = gzip.compress(b"a,b\nc,d\n")
    with pytest.raises(BadFile, match=r"^not a valid gzip file: "):
        read_all(whole[:-4], gzipped=True)


def test_plain_text_named_gzip_is_a_bad_file() -> None:
    with pytest.raises(BadFile, match=r"^not a valid gzip file: Not a gzipped file"):
        read_all(b"Identity,Timestamp\nu,1\n", gzipped=True)


def test_corrupt_gzip_body_is_a_bad_file() -> None:
    whole = bytearray(gzip.compress(b"a,b\n" + b"c,d\n" * 1000))
    whole[20] ^= 0xFF
    with pytest.raises(BadFile, match=r"^not a valid gzip file: "):
        read_all(bytes(whole), gzipped=True)


def test_skip_bytes_over_corrupt_gzip_is_a_bad_file() -> None:
    file = open_stream(io.BytesIO(b"this is not gzip"), gzipped=True).file
    with pytest.raises(BadFile, match=r"^not a valid gzip file: "):
        skip_to(file, 5)


def test_skip_bytes_past_the_end_is_a_bad_file() -> None:
    data = gzip.compress(b"a,b\nc,d\n")
    file = open_stream(io.BytesIO(data), gzipped=True).file
    with pytest.raises(BadFile, match=r"shorter than its recorded import position \(100 bytes\)"):
        skip_to(file, 100)


# -- the header ----------------------------------------------------------------------------------


def test_read_header_takes_the_first_record() -> None:
    reader = RecordReader(open_stream(io.BytesIO(b"\n\nIdentity,Timestamp\nu,1\n"),
                                     gzipped=False).file)
    head = read_header(reader)
    assert (head.number, head.line, head.cells) == (0, 3, ["Identity", "Timestamp"])
    assert [r.cells for r in reader] == [["u", "1"]]


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "file is empty: no header row"),
    (b"\n\r\n\n", "file is empty: no header row"),
    (b"\x89PNG\r\n\x1a\n", "not a CSV text file: the first line is not valid UTF-8"),
    (b"Identity,Timestamp\xff\nu,1\n", "not a CSV text file: the first line is not valid UTF-8"),
])
def test_read_header_rejects_files_without_a_usable_first_line(data: bytes, reason: str) -> None:
    reader = RecordReader(open_stream(io.BytesIO(data), gzipped=False).file)
    with pytest.raises(BadFile) as raised:
        read_header(reader)
    assert raised.value.reason == reason


def test_read_header_rejects_an_unreadable_first_record() -> None:
    reader = RecordReader(open_stream(io.BytesIO(b"x" * 200 + b"\nIdentity\n"), gzipped=False).file,
                          max_line_bytes=SMALL_LINE_BYTES)
    with pytest.raises(BadFile) as raised:
        read_header(reader)
    assert raised.value.reason == f"header row is unreadable: line longer than " \
                                  f"{SMALL_LINE_BYTES} bytes"
