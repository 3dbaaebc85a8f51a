"""CSV: fixed columns then properties in first-seen order, formula neutralisation (and --raw),
values rendered exactly, a changed input detected, and memory bounded while streaming."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.filetools.csvout import (
    InputChanged,
    collect_properties,
    neutralise,
    render,
    to_csv,
)
from shared.filetools.sources import ByteSource, LocalLocation, resolve_input
from shared.formats.exportlines import Problem, Problems
from shared.store.s3 import S3
from tests.shared.filetools.exportset import Line, ndjson, write_revisions

pytestmark = pytest.mark.timeout(120)


def no_s3() -> S3:
    raise AssertionError("no S3 here")


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize(("text", "shown"), [
    ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
    ("+1+2", "'+1+2"),
    ("-2+3", "'-2+3"),
    ("@cmd", "'@cmd"),
    ("\tx", "'\tx"),
    ("\r=1", "'\r=1"),
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
    ("-", "'-"),
    ("-5", "-5"),
    ("+3.25", "+3.25"),
    ("-1e5", "-1e5"),
    ("", ""),
    ("a=b", "a=b"),
    (" =1", " =1"),
    ("Plain text", "Plain text"),
])
def test_text_a_spreadsheet_would_run_gets_a_leading_quote(text: str, shown: str) -> None:
    assert neutralise(text) == shown


@pytest.mark.parametrize(("value", "cell"), [
    (None, ""), (True, "true"), (False, "false"), (0, "0"), (-5, "-5"), (1.5, "1.5"),
    ([1, "=x"], '[1,"=x"]'), ({"a": {"b": None}}, '{"a":{"b":null}}'), ("=x", "'=x"),
])
def test_values_render_as_text_or_json(value: object, cell: str) -> None:
    assert render(value) == cell


def test_raw_leaves_text_alone() -> None:
    assert render("=x", raw=True) == "=x"


def test_properties_are_collected_in_first_seen_order_without_the_reserved_keys() -> None:
    lines: list[Line] = [{"_p": "a", "_t": 1, "Zeta": 1}, {"_p": "b", "_p2": "c", "Größe": "L"},
             {"_p": "d", "_n": "x", "Alpha": 1, "Zeta": 2}, {"_p": "e", "東京": True}]
    assert collect_properties(lines) == ["Zeta", "Größe", "Alpha", "東京"]


def test_to_csv_writes_fixed_columns_then_properties_neutralised(tmp_path: Path) -> None:
    # Given lines with unicode property names, formula-like text and varied value types
    lines: list[Line] = [
        {"_p": "anna", "_t": 1706659200, "_n": "Signed Up", "Plan": "=1+1", "Größe": "L"},
        {"_p": "+44 20 7946", "_p2": "anna@example.com"},
        {"_p": "bob", "_t": 1706659300, "Amount": -12.5, "Tags": ["a", "b"], "Plan": "-5",
         "=evil": "@x"},
    ]
    write_revisions(tmp_path, {1: ndjson(lines[:2]), 2: ndjson(lines[2:])}, gzipped=[2])
    inp = resolve_input(str(tmp_path), no_s3)
    # When converted
    out = io.BytesIO()
    assert to_csv(inp, out, Problems(strict=True)) == 3
    # Then the header is _p,_p2,_t,_n and the properties as first seen; cells are neutralised
    assert rows_of(out.getvalue()) == [
        ["_p", "_p2", "_t", "_n", "Plan", "Größe", "Amount", "Tags", "'=evil"],
        ["anna", "", "1706659200", "Signed Up", "'=1+1", "L", "", "", ""],
        ["'+44 20 7946", "anna@example.com", "", "", "", "", "", "", ""],
        ["bob", "", "1706659300", "", "-5", "", "-12.5", '["a","b"]', "'@x"],
    ]
    # And --raw keeps every value as it was
    raw = io.BytesIO()
    to_csv(inp, raw, Problems(strict=True), raw=True)
    assert rows_of(raw.getvalue())[0][-1] == "=evil"
    assert rows_of(raw.getvalue())[1][4] == "=1+1"


def test_bad_lines_are_reported_once_over_both_passes(tmp_path: Path) -> None:
    write_revisions(tmp_path, {1: b'{"_p":"a","X":1}\n{nope\n{"_p":"b","Y":2}\n'})
    found: list[Problem] = []
    out = io.BytesIO()
    assert to_csv(resolve_input(str(tmp_path), no_s3), out, Problems(report=found.append)) == 2
    assert [(p.line, p.reason.split(":")[0]) for p in found] == [(2, "bad JSON")]
    assert rows_of(out.getvalue())[0] == ["_p", "_p2", "_t", "_n", "X", "Y"]


class _Changing(LocalLocation):
    """A directory whose file gains a property after it was read once."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened = 0

    def open_raw(self, name: str, start_byte: int = 0) -> ByteSource:
        self.opened += 1
        if self.opened == 2:
            (self.root / name).write_bytes(b'{"_p":"a","New":1}\n')
        return super().open_raw(name, start_byte)


def test_an_input_that_changes_between_the_passes_is_an_error_not_a_wrong_file(
        tmp_path: Path) -> None:
    write_revisions(tmp_path, {1: b'{"_p":"a","Old":1}\n'})
    inp = resolve_input(str(tmp_path), no_s3)
    changing = type(inp)(_Changing(tmp_path), inp.parts)
    with pytest.raises(InputChanged, match="property 'New' was not there in the first pass"):
        to_csv(changing, io.BytesIO(), Problems())


class _CountingSink(io.RawIOBase):
    def __init__(self) -> None:
        self.size_bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        n = len(data)  # type: ignore[arg-type]
        self.size_bytes += n
        return n


def _lines(count: int) -> Iterator[bytes]:
    for i in range(count):
        yield ndjson([{"_p": f"user-{i}", "_t": 1706659200 + i, "_n": "Viewed Page",
                       "Page": f"/products/{i % 500}", "Referrer": "https://example.com/" * 3,
                       "Plan": ("Pro", "Free", "=cmd")[i % 3]}])


def test_conversion_memory_stays_bounded_as_the_input_grows(tmp_path: Path) -> None:
    # Given an input of about 20 MB
    path = tmp_path / "1.json"
    with path.open("wb") as f:
        for raw in _lines(120_000):
            f.write(raw)
    size_bytes = path.stat().st_size
    inp = resolve_input(str(path), no_s3)
    sink = _CountingSink()
    out = io.BufferedWriter(sink)
    # When converted to CSV while Python allocations are traced
    tracemalloc.start()
    try:
        rows = to_csv(inp, out, Problems(strict=True))
        out.flush()
        _current, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then every row was written, and the peak is a few buffers, not the file or its lines
    assert rows == 120_000 and sink.size_bytes > size_bytes // 3
    assert size_bytes > 15_000_000
    assert peak_bytes < 8 * 1024 * 1024, peak_bytes


def test_a_value_with_a_lone_cr_round_trips_through_pythons_csv(tmp_path: Path) -> None:
    # Given export lines whose values hold a lone CR, a CRLF and a LF
    lines: list[Line] = [{"_p": "a\rb", "_t": 1, "Note": "one\rtwo"},
                         {"_p": "c", "_t": 2, "Note": "x\r\ny", "Other": "p\nq"}]
    path = tmp_path / "in.json"
    path.write_bytes(ndjson(lines))
    out = io.BytesIO()
    # When converted to CSV
    to_csv(resolve_input(str(path), no_s3), out, Problems())
    # Then Python's csv reads every value back as it was, one record per line
    assert rows_of(out.getvalue()) == [["_p", "_p2", "_t", "_n", "Note", "Other"],
                                       ["a\rb", "", "1", "", "one\rtwo", ""],
                                       ["c", "", "2", "", "x\r\ny", "p\nq"]]


class _CountingReader:
    """The S3 adapter, counting the objects opened."""

    def __init__(self, s3: S3) -> None:
        self._s3 = s3
        self.opened: list[str] = []

    def open(self, bucket: str, key: str, **kwargs: object) -> object:
        self.opened.append(key)
        return self._s3.open(bucket, key, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self._s3, name)


def test_an_s3_source_is_read_once_and_converts_as_a_local_one(
        s3: S3, export_bucket: str, tmp_path: Path) -> None:
    # Given the same revisions in a bucket and in a local directory
    revisions = {1: ndjson([{"_p": "a", "_t": 1, "Old": 1}, {"_p": "b", "_p2": "c"}]),
                 2: ndjson([{"_p": "d", "_t": 2, "New": "=x", "Old": "y"}]) + b"not json\n"}
    for n, body in revisions.items():
        s3.put(export_bucket, f"exp/revisions/{n}.json", body)
    write_revisions(tmp_path, revisions)
    counting = _CountingReader(s3)
    remote = resolve_input(f"s3://{export_bucket}/exp", lambda: counting)  # type: ignore[arg-type, return-value]
    local = resolve_input(str(tmp_path), no_s3)
    # When both are converted
    remote_problems: list[Problem] = []
    local_problems: list[Problem] = []
    remote_out, local_out = io.BytesIO(), io.BytesIO()
    rows = to_csv(remote, remote_out, Problems(report=remote_problems.append))
    assert to_csv(local, local_out, Problems(report=local_problems.append)) == rows == 3
    # Then each object was fetched once, and the CSV and the problems are the same
    assert sorted(counting.opened) == ["exp/revisions/1.json", "exp/revisions/2.json"]
    assert remote_out.getvalue() == local_out.getvalue()
    assert [(p.line, p.reason) for p in remote_problems] == \
        [(p.line, p.reason) for p in local_problems]
    assert rows_of(remote_out.getvalue())[0] == ["_p", "_p2", "_t", "_n", "Old", "New"]
