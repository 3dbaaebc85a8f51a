"""Compile, JSON array and alias split: numeric order over hundreds of files, plain and gzip,
no blank lines, every line ended, bad lines reported with their place, inputs untouched."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from shared.filetools.convert import compile_lines, split_aliases, to_json_array
from shared.filetools.sources import resolve_input
from shared.formats.exportlines import MalformedInput, Problem, Problems
from shared.store.s3 import S3
from tests.shared.filetools.exportset import (
    Line,
    ndjson,
    read_ndjson,
    revision_lines,
    tree_digest,
    write_revisions,
)

pytestmark = pytest.mark.timeout(60)


def no_s3() -> S3:
    raise AssertionError("no S3 here")


def test_compile_joins_three_hundred_files_in_numeric_order_plain_and_gzip(
        tmp_path: Path) -> None:
    # Given 300 revisions, every seventh gzipped, some without a final newline, one with CRLF
    bodies = {}
    for n in range(1, 301):
        body = ndjson(revision_lines(n))
        if n % 11 == 0:
            body = body.rstrip(b"\n")
        if n == 150:
            body = body.replace(b"\n", b"\r\n")
        bodies[n] = body
    write_revisions(tmp_path / "revisions", bodies, gzipped=range(7, 301, 7))
    before = tree_digest(tmp_path)
    inp = resolve_input(str(tmp_path), no_s3)
    out = io.BytesIO()
    counted: list[int] = []
    # When they are compiled
    count = compile_lines(inp, out, Problems(strict=True), counted.append)
    # Then every line is there once, in numeric order, each ended by exactly one "\n"
    data = out.getvalue()
    assert count == 600 and data.count(b"\n") == 600 and data.endswith(b"}\n")
    assert b"\n\n" not in data and b"\r" not in data
    assert [(line["Revision"], line["Position"]) for line in read_ndjson(data)] == [
        (n, i) for n in range(1, 301) for i in (0, 1)]
    # And progress counted every stored byte, and the inputs are unchanged
    assert sum(counted) == inp.total_bytes
    assert tree_digest(tmp_path) == before


def test_compile_reports_bad_lines_by_file_and_line_and_goes_on(tmp_path: Path) -> None:
    write_revisions(tmp_path, {
        1: ndjson(revision_lines(1)),
        2: b'{"_p":"a","_t":1}\n\n{"_p":\n{"_t":5}\n{"_p":"b","_t":2}\n',
        3: ndjson(revision_lines(3)),
    })
    found: list[Problem] = []
    out = io.BytesIO()
    count = compile_lines(resolve_input(str(tmp_path), no_s3), out,
                          Problems(report=found.append))
    assert count == 6
    assert [(Path(p.where).name, p.line, p.reason.split(":")[0]) for p in found] == [
        ("2.json", 2, "blank line"), ("2.json", 3, "bad JSON"),
        ("2.json", 4, "missing _p (identity)")]
    assert [line["_p"] for line in read_ndjson(out.getvalue())][2:4] == ["a", "b"]


def test_strict_compile_stops_at_the_first_bad_line(tmp_path: Path) -> None:
    write_revisions(tmp_path, {1: ndjson(revision_lines(1)), 2: b"{bad\n", 3: b"[]\n"})
    with pytest.raises(MalformedInput, match=r"2\.json line 1: bad JSON"):
        compile_lines(resolve_input(str(tmp_path), no_s3), io.BytesIO(), Problems(strict=True))


def test_to_json_writes_one_standard_array(tmp_path: Path) -> None:
    lines = [*revision_lines(1), {"_p": "ünï", "_p2": "x", "Emoji": "🎉"}]
    write_revisions(tmp_path, {1: ndjson(lines[:2]), 2: ndjson(lines[2:])}, gzipped=[2])
    out = io.BytesIO()
    assert to_json_array(resolve_input(str(tmp_path), no_s3), out, Problems()) == 3
    assert json.loads(out.getvalue()) == lines


def test_to_json_of_nothing_valid_is_an_empty_array(tmp_path: Path) -> None:
    write_revisions(tmp_path, {1: b"\n"})
    out = io.BytesIO()
    assert to_json_array(resolve_input(str(tmp_path), no_s3), out, Problems()) == 0
    assert json.loads(out.getvalue()) == []


def test_split_aliases_sends_lines_with_p2_one_way_and_the_rest_the_other(
        tmp_path: Path) -> None:
    lines: list[Line] = [{"_p": "a", "_t": 1, "_n": "x"}, {"_p": "a", "_p2": "b"},
             {"_p": "c", "_t": 2, "Plan": "pro"}, {"_p": "c", "_p2": "d", "_t": 3}]
    write_revisions(tmp_path, {1: ndjson(lines)})
    aliases, others = io.BytesIO(), io.BytesIO()
    counts = split_aliases(resolve_input(str(tmp_path), no_s3), aliases, others, Problems())
    assert (counts.aliases, counts.others) == (2, 2)
    assert read_ndjson(aliases.getvalue()) == [lines[1], lines[3]]
    assert read_ndjson(others.getvalue()) == [lines[0], lines[2]]
