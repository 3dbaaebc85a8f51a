"""The fast CSV path changes nothing: both engines give byte-identical revisions, bad-row
reports, resume positions and file errors, on the bad-input corpus and on generated files.

``FileImport`` runs here over an in-memory object and an in-memory store (narrow fakes: the
point is the conversion, which the S3 round trip does not touch); each file is imported in
several runs, stopping at every checkpoint, so every resume position is compared too.
"""

from __future__ import annotations

import gzip
import io
import random
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.clock import FrozenClock
from shared.errors import BadFile, SettingsError
from shared.imports import fastrows
from shared.imports.fastrows import FastRows, fast_available, use_fast
from shared.imports.filerun import FileImport, FilePosition
from shared.metrics import Metrics
from shared.settings import Settings
from shared.store.revisions import RevisionMeta
from shared.store.revisionwriter import Limits, RevisionWriter
from tests.shared.imports.test_bad_inputs import BAD_FILES, BAD_ROWS, good_file, truncated_gzip

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not fast_available(), reason="compiled engine not built")]

HEADER = b"Identity,Timestamp,Event,Prop:Email,Prop:City\n"


class MemoryObject:
    """What ``FileImport`` reads through ``S3.open``: ranges of one object's bytes."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def open(self, bucket: str, key: str, *, if_match: str | None = None,
             start_byte: int = 0, end_byte: int | None = None) -> io.BytesIO:
        end = len(self.body) if end_byte is None else end_byte + 1
        return io.BytesIO(self.body[start_byte:end])


class MemoryStore:
    def __init__(self) -> None:
        self.written: list[tuple[dict[str, Any], bytes]] = []
        self.reports: list[tuple[int, int, str]] = []

    def write(self, site: str, meta: RevisionMeta, body: bytes | bytearray) -> None:
        self.written.append((asdict(meta), bytes(body)))

    # RejectReports.write
    def write_report(self, site: str, number: int, record_end: int, text: str) -> None:
        self.reports.append((number, record_end, text))


class Reports:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def write(self, site: str, number: int, record_end: int, text: str) -> None:
        self.store.write_report(site, number, record_end, text)


def stopping_every(n: int) -> Callable[[], bool]:
    """``should_stop`` that says yes at every n-th check (never for 0)."""
    checks = iter(range(1, 1_000_000))
    return (lambda: next(checks) % n == 0) if n else (lambda: False)


def import_file(body: bytes, *, fast: bool, gzipped: bool = False, stop_every: int = 0,
                limits: Limits | None = None) -> dict[str, Any]:
    """Everything an import of ``body`` leaves: revisions with their metadata, reports, the
    position after each run, and the file error if there is one.  ``stop_every``: each run
    stops at its n-th check (0: runs to the end)."""
    store = MemoryStore()
    writer = RevisionWriter(store, Reports(store), "site", "csv",  # type: ignore[arg-type]
                            FrozenClock(1_700_000_000), Metrics())
    runner = FileImport(MemoryObject(body), "bucket", writer, Metrics(),  # type: ignore[arg-type]
                        limits or Limits(), fast=fast)
    pos = FilePosition(key="f.csv.gz" if gzipped else "f.csv", etag="e", gzipped=gzipped)
    positions: list[dict[str, Any]] = []
    error = None
    last = 0
    for _ in range(10_000):
        stop = stopping_every(stop_every)
        try:
            out = runner.run(pos, last, deadline_mono_s=1e9, should_stop=stop)
        except BadFile as exc:
            error = exc.reason
            break
        last = out.last_revision
        if out.position is not None:
            pos = out.position
        positions.append(asdict(pos))
        if out.done:
            break
    return {"revisions": store.written, "reports": store.reports, "positions": positions,
            "error": error}


def assert_same(body: bytes, **kwargs: Any) -> dict[str, Any]:
    python = import_file(body, fast=False, **kwargs)
    fast = import_file(body, fast=True, **kwargs)
    assert fast == python
    return python


def good_rows(n: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    cities = ["Zürich", "東京", "New York, NY", "", 'say "hi"', "tab\there", "a\\b"]
    out = io.StringIO()
    for i in range(n):
        city = rng.choice(cities)
        quoted = '"' + city.replace('"', '""') + '"' if ("," in city or '"' in city) else city
        event = rng.choice(["Signed Up", "", "Viewed"])
        email = rng.choice(["", f"u{i}@example.com"])
        out.write(f"u{i % 97},{1_700_000_000 + i},{event},{email},{quoted}\n")
    return out.getvalue().encode()


# -- the engine is used, and converts what it should -----------------------------------------


def test_fast_path_converts_plain_rows_exactly_as_orjson_does() -> None:
    # Given a file of plain rows with quoting, escapes and non-ASCII text
    body = HEADER + good_rows(5000)
    # When imported by both engines, Then the revisions are byte-identical
    result = assert_same(body)
    lines = b"".join(r[1] for r in result["revisions"]).splitlines()
    assert sum(meta["events"] for meta, _ in result["revisions"]) == len(lines) > 4000
    assert orjson.loads(lines[0])["_p"] == "u0"


def test_the_fast_path_takes_the_plain_rows() -> None:
    # A guard against an identity test that passes because the fast path never runs.
    from shared.formats.csvrows import parse_header

    columns = parse_header(["Identity", "Timestamp", "Event"])
    fast = FastRows.for_columns(columns)
    assert fast is not None
    from shared.formats.csvrecords import RecordReader, read_header
    from shared.store.revisionwriter import Batch

    reader = RecordReader(io.BufferedReader(io.BytesIO(good_file(*range(1, 101)))))  # type: ignore[arg-type]
    read_header(reader)
    batch = Batch(record_start=1, byte_start=reader.position_bytes)
    assert fast.take(reader, batch, Limits(), 1000) == 100
    assert (batch.events, batch.min_t, batch.max_t) == (100, 1_700_000_001, 1_700_000_100)
    assert (reader.number, reader.end_line) == (100, 101)


def test_files_the_fast_path_leaves_entirely_to_python() -> None:
    from shared.formats.csvrows import parse_header

    # An alias file (no Timestamp column); two properties of one name never get here (the
    # header is a file error, tests/shared/formats/test_csvrows.py)
    assert FastRows.for_columns(parse_header(["Identity", "Alias"])) is None


# -- the bad-input corpus --------------------------------------------------------------------


@pytest.mark.parametrize("bad", [c[1] for c in BAD_ROWS], ids=[c[0] for c in BAD_ROWS])
@pytest.mark.parametrize("stop_every", [0, 1])
def test_bad_row_corpus_gives_identical_results(bad: bytes, stop_every: int) -> None:
    rest = good_file(*range(3000, 6000))[len(b"Identity,Timestamp,Event\n"):]
    body = good_file(*range(1, 3000)) + bad + rest
    assert_same(body, stop_every=stop_every, limits=Limits(max_events_per_revision=1000))


@pytest.mark.parametrize("body", [c[2] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_file_corpus_gives_identical_results(body: bytes) -> None:
    assert_same(body)


def test_truncated_gzip_gives_identical_revisions_before_its_error() -> None:
    result = assert_same(truncated_gzip(rows=200_000), gzipped=True,
                         limits=Limits(max_events_per_revision=10_000))
    assert result["error"] and result["revisions"]


@pytest.mark.parametrize("limits", [Limits(max_events_per_revision=7),
                                    Limits(max_revision_bytes=5000),
                                    Limits(max_rejects_per_revision=3)])
def test_batch_limits_and_resumes_fall_on_the_same_records(limits: Limits) -> None:
    rows = good_rows(3000).splitlines(keepends=True)
    for i in range(0, len(rows), 37):
        rows[i] = b"bad," + rows[i]
    body = HEADER + b"".join(rows)
    assert_same(body, limits=limits, stop_every=2)
    assert_same(gzip.compress(body), gzipped=True, limits=limits, stop_every=3)


def test_a_large_file_over_many_buffers() -> None:
    body = HEADER + good_rows(60_000, seed=2) + b"u,1700000000,E,,last row without newline"
    result = assert_same(body, stop_every=5)
    assert len(result["positions"]) > 3


# -- generated files -------------------------------------------------------------------------

_PIECES = ["a", "b", "Zürich", "東京", " ", "\t", ",", '"', '""', "\r", "\n", "\r\n", "\x00",
           "\\", "\x85", "\xa0", "\u2028", "\u3000", "x" * 20, "1700000000", "0", "01",
           "4102444801", "17000000000000", "9", "-1", "+5", "é", "\x1f"]
# Each header with the kind of each column, for rows that are mostly valid.
_HEADERS = [(b"Identity,Timestamp,Event,Prop:A,Prop:B\n", "itepp"),
            (b"Identity,Timestamp,Event,Alias,Prop:A\n", "itepp"),
            (b"\xef\xbb\xbfidentity , TIMESTAMP,Prop:A,Other\r\n", "itpp"),
            (b"Identity,Alias,Prop:A\n", "ipp"),
            (b"Prop:A,Event,Timestamp,Identity\n", "peti")]
_CELLS = {"i": ["u1", "Zürich", '"a, ""b"""', " u2", "", "x\ty"],
          "t": ["1700000000", "1704067200", "4102444800", "0017", "", "12a"],
          "e": ["Signed Up", "", "東京", '"x,y"', "e "],
          "p": ["", "x@y.z", '"a, ""b"""', "=1", "tab\tx", "back\\slash", "\x01", "ünï"]}


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    header, kinds = draw(st.sampled_from(_HEADERS))
    rows = []
    for _ in range(draw(st.integers(0, 40))):
        if draw(st.integers(0, 3)):  # a row of cells of the right kinds, mostly valid
            text = ",".join(draw(st.sampled_from(_CELLS[kind])) for kind in kinds)
        else:  # anything
            text = "".join(draw(st.lists(st.sampled_from(_PIECES), max_size=12)))
        raw = text.encode("utf-8")
        if draw(st.integers(0, 20)) == 0:
            raw += b"\xff\xfe"  # invalid UTF-8
        rows.append(raw + draw(st.sampled_from([b"\n", b"\r\n"])))
    return header + b"".join(rows)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=csv_files(), stop_every=st.integers(0, 3), max_events=st.integers(1, 12))
def test_generated_files_give_identical_results(body: bytes, stop_every: int,
                                                max_events: int) -> None:
    limits = Limits(max_events_per_revision=max_events)
    with pytest.MonkeyPatch.context() as patch:
        # Small files: the fast path tries every record, not backing off after a short take.
        patch.setattr(fastrows, "_BACK_OFF_RECORDS", 0)
        assert_same(body, stop_every=stop_every, limits=limits)
        assert_same(gzip.compress(body), gzipped=True, stop_every=stop_every, limits=limits)


# -- the setting ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "engine"), [(None, "auto"), ("", "auto"), ("FAST", "fast"),
                                               (" python ", "python")])
def test_the_engine_setting_is_parsed_once(value: str | None, engine: str) -> None:
    env = {} if value is None else {"BUCKETBRIDGE_CSV_ENGINE": value}
    assert Settings.from_env(env).csv_engine == engine


def test_an_unknown_engine_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="invalid BUCKETBRIDGE_CSV_ENGINE 'c': use auto"):
        Settings.from_env({"BUCKETBRIDGE_CSV_ENGINE": "c"})


def test_fast_without_the_extension_refuses_and_auto_falls_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert use_fast("auto") and use_fast("fast") and not use_fast("python")
    monkeypatch.setattr(fastrows, "_fastcsv", None)
    assert not use_fast("auto")
    with pytest.raises(SettingsError, match="compiled CSV engine is not installed"):
        use_fast("fast")
