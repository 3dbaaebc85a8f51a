"""One person's history: aliases followed transitively in both directions, across files, with
only the alias graph held in memory."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from shared.filetools.aliases import AliasGraph, filter_identity
from shared.filetools.sources import resolve_input
from shared.formats.exportlines import Problem, Problems
from shared.store.s3 import S3
from tests.shared.filetools.exportset import Line, ndjson, read_ndjson, write_revisions

pytestmark = pytest.mark.timeout(60)


def no_s3() -> S3:
    raise AssertionError("no S3 here")


def test_a_chain_of_aliases_is_one_person_whichever_end_is_asked() -> None:
    # Given A→B, C→B and B→D, and an unrelated E→F
    graph = AliasGraph()
    for a, b in (("A", "B"), ("C", "B"), ("B", "D"), ("E", "F")):
        graph.link(a, b)
    # Then each of A, B, C, D leads to all four, and E only to F
    for identity in "ABCD":
        assert graph.group(identity) == frozenset("ABCD")
    assert graph.group("F") == frozenset("EF")
    # And an identity without aliases is a person of its own
    assert graph.group("Z") == frozenset("Z")
    assert len(graph) == 6


def test_a_long_chain_is_followed_without_recursion() -> None:
    graph = AliasGraph()
    for i in range(50_000):
        graph.link(f"id{i + 1}", f"id{i}")
    assert len(graph.group("id0")) == 50_001


def test_filter_follows_aliases_declared_after_the_events_across_files(tmp_path: Path) -> None:
    # Given D's events in the first file, and the aliases that link A, B, C and D in later ones
    files: dict[int, list[Line]] = {
        1: [{"_p": "D", "_t": 1, "_n": "Paid"}, {"_p": "E", "_t": 2, "_n": "Paid"},
            {"_p": "A", "_t": 3, "_n": "Visited", "Größe": "M"}],
        2: [{"_p": "A", "_p2": "B"}, {"_p": "X", "_t": 4}, {"_p": "C", "_p2": "B"}],
        10: [{"_p": "B", "_p2": "D", "_t": 5}, {"_p": "E", "_p2": "F"},
             {"_p": "C", "_t": 6, "_n": "Left"}],
    }
    write_revisions(tmp_path, {n: ndjson(lines) for n, lines in files.items()}, gzipped=[2])
    out = io.BytesIO()
    found: list[Problem] = []
    # When the lines of C are filtered
    result = filter_identity(resolve_input(str(tmp_path), no_s3), "C", out,
                             Problems(report=found.append))
    # Then every line of A, B, C and D comes out, in input order, and nothing of E, F or X
    assert result.identities == frozenset("ABCD") and result.lines == 6
    assert read_ndjson(out.getvalue()) == [
        files[1][0], files[1][2], files[2][0], files[2][2], files[10][0], files[10][2]]
    assert found == []


def test_an_unknown_identity_gives_no_line(tmp_path: Path) -> None:
    write_revisions(tmp_path, {1: ndjson([{"_p": "A", "_t": 1}])})
    out = io.BytesIO()
    result = filter_identity(resolve_input(str(tmp_path), no_s3), "nobody", out, Problems())
    assert result.lines == 0 and out.getvalue() == b""
