"""Export lines: what is valid, what each bad line is reported as (with its line number), exact
positions for resuming, bounded reading, and strict versus lenient runs."""

from __future__ import annotations

import gzip
import io

import pytest

from shared.errors import UserError
from shared.formats.exportlines import (
    BadLine,
    LineScanner,
    MalformedInput,
    Problem,
    Problems,
    parse_line,
)

pytestmark = pytest.mark.timeout(30)


def scan(data: bytes, **kwargs: object) -> tuple[list[bytes], list[Problem], LineScanner]:
    found: list[Problem] = []
    scanner = LineScanner(io.BytesIO(data), "f.json", Problems(report=found.append),
                          **kwargs)  # type: ignore[arg-type]
    texts = [text for text, _line in scanner]
    return texts, found, scanner


def test_a_full_line_parses_with_its_keys_in_order_and_unicode_names() -> None:
    line = parse_line('{"_p":"anna","_t":1706659200,"_n":"Signed Up","_p2":"a@x","Größe":"L",'
                      '"東京":1.5,"nested":{"a":[1]}}'.encode())
    assert list(line) == ["_p", "_t", "_n", "_p2", "Größe", "東京", "nested"]
    assert line["Größe"] == "L" and line["東京"] == 1.5


@pytest.mark.parametrize(("raw", "reason"), [
    (b'{"_p": "a", ', "bad JSON: "),
    (b"\xff\xfe{}", "bad JSON: "),
    (b'[{"_p": "a"}]', "not a JSON object (an array)"),
    (b'"anna"', "not a JSON object (a string)"),
    (b"42", "not a JSON object (a number)"),
    (b"null", "not a JSON object (null)"),
    (b'{"_t": 1706659200, "_n": "x"}', "missing _p (identity)"),
    (b'{"_p": ""}', "_p (identity) is not a non-empty string"),
    (b'{"_p": 17}', "_p (identity) is not a non-empty string"),
    (b'{"_p": "a", "_t": "1706659200"}', '_t is not an integer number of seconds: "1706659200"'),
    (b'{"_p": "a", "_t": 1.5}', "_t is not an integer number of seconds: 1.5"),
    (b'{"_p": "a", "_t": true}', "_t is not an integer number of seconds: true"),
    (b'{"_p": "a", "_p2": ""}', "_p2 (alias) is not a non-empty string"),
    (b'{"_p": "a", "_n": 3}', "_n (event) is not a string"),
])
def test_each_kind_of_bad_line_has_its_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(BadLine) as caught:
        parse_line(raw)
    assert caught.value.reason.startswith(reason), caught.value.reason


def test_bad_lines_are_reported_with_their_line_numbers_and_the_rest_is_read() -> None:
    # Given a file with good lines around bad JSON, a non-object, a missing _p and blank lines
    data = (b'{"_p":"a","_t":1}\n'
            b"{oops\n"
            b"\n"
            b'["_p"]\n'
            b'{"_t":2}\n'
            b"   \r\n"
            b'{"_p":"b","_t":3}\n')
    # When it is scanned
    texts, found, _ = scan(data)
    # Then the good lines come through and each bad one is one problem at its own line
    assert texts == [b'{"_p":"a","_t":1}', b'{"_p":"b","_t":3}']
    assert [(p.line, p.reason.split(":")[0]) for p in found] == [
        (2, "bad JSON"), (3, "blank line"), (4, "not a JSON object (an array)"),
        (5, "missing _p (identity)"), (6, "blank line")]
    assert str(found[1]) == "f.json line 3: blank line"


def test_crlf_and_a_missing_final_newline_are_fine_and_positions_are_exact() -> None:
    data = b'{"_p":"a"}\r\n{"_p":"b"}'
    texts, found, scanner = scan(data)
    assert texts == [b'{"_p":"a"}', b'{"_p":"b"}'] and found == []
    assert (scanner.line_number, scanner.position_bytes) == (2, len(data))


def test_a_utf8_bom_at_the_start_of_a_file_is_dropped_and_counted_in_positions() -> None:
    data = b'\xef\xbb\xbf{"_p":"a"}\n{"_p":"b"}\n'
    texts, found, scanner = scan(data)
    assert texts == [b'{"_p":"a"}', b'{"_p":"b"}'] and found == []
    assert scanner.position_bytes == len(data)


def test_positions_after_each_line_allow_resuming_with_the_same_numbers() -> None:
    data = b'{"_p":"a"}\n\n{"_p":"b"}\n{"_p":"c"}\n'
    file = io.BytesIO(data)
    scanner = LineScanner(file, "f", Problems())
    seen = [(text, scanner.line_number, scanner.position_bytes) for text, _ in scanner]
    # after "b": line 3, byte 23
    assert seen[1] == (b'{"_p":"b"}', 3, 23)
    # When a scan resumes at that byte with the next line number
    resumed = io.BytesIO(data)
    resumed.seek(23)
    found: list[Problem] = []
    rest = LineScanner(resumed, "f", Problems(report=found.append), start_line=4,
                       start_byte=23)
    # Then it reads the same remaining lines, numbered as a full scan numbers them
    assert [(t, rest.line_number, rest.position_bytes) for t, _ in rest] == [seen[2]]


def test_an_over_long_line_is_reported_and_skipped_without_being_held() -> None:
    # Given a line far longer than the limit between two good lines
    data = b'{"_p":"a"}\n{"_p":"' + b"x" * 10_000 + b'"}\n{"_p":"b"}\n'
    # When scanned with a 100-byte limit
    texts, found, scanner = scan(data, max_line_bytes=100)
    # Then the long line is one problem and both neighbours are read
    assert texts == [b'{"_p":"a"}', b'{"_p":"b"}']
    assert [(p.line, p.reason) for p in found] == [(2, "line longer than 100 bytes")]
    assert scanner.position_bytes == len(data) and scanner.line_number == 3


def test_a_truncated_gzip_stream_is_one_problem_after_the_lines_before_it() -> None:
    # Given a gzip file cut short
    body = b"".join(b'{"_p":"u%d"}\n' % i for i in range(5000))
    compressed = gzip.compress(body)
    truncated = gzip.GzipFile(fileobj=io.BytesIO(compressed[: len(compressed) // 2]))
    # When it is scanned
    found: list[Problem] = []
    scanner = LineScanner(truncated, "t.json.gz", Problems(report=found.append))  # type: ignore[arg-type]
    texts = [text for text, _ in scanner]
    # Then the lines before the cut are read and the rest is one problem, not a crash
    assert 0 < len(texts) < 5000
    assert texts == [b'{"_p":"u%d"}' % i for i in range(len(texts))]
    assert len(found) == 1 and "not a valid gzip stream" in found[0].reason


def test_strict_stops_at_the_first_problem_with_a_user_error() -> None:
    problems = Problems(strict=True)
    scanner = LineScanner(io.BytesIO(b'{"_p":"a"}\n{bad\n{bad\n'), "s.json", problems)
    with pytest.raises(MalformedInput) as caught:
        list(scanner)
    assert isinstance(caught.value, UserError)  # exit status 2: the input is at fault
    assert str(caught.value).startswith("s.json line 2: bad JSON")
    assert problems.count == 1


def test_a_check_rejects_valid_lines_for_a_command_s_own_reason() -> None:
    found: list[Problem] = []
    scanner = LineScanner(io.BytesIO(b'{"_p":"a"}\n{"_p":"b","_t":1}\n'), "c",
                          Problems(report=found.append),
                          check=lambda line: None if "_t" in line else "missing _t")
    assert [t for t, _ in scanner] == [b'{"_p":"b","_t":1}']
    assert [(p.line, p.reason) for p in found] == [(1, "missing _t")]


def test_silenced_problems_neither_report_nor_stop() -> None:
    quiet = Problems.silenced()
    quiet.add(Problem("x", 1, "bad"))
    assert quiet.count == 1 and quiet.strict is False
