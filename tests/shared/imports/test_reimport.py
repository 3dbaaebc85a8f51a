"""Reimport against real Redis and moto's S3 server: revisions that keep ``_t`` and record their
range, exactly once across stops and crashes (before and after the progress marker), the
lease and the conditional write as fences, and the recurring CSV import unharmed."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.errors import UserError
from shared.filetools.sources import Input, resolve_input
from shared.fleet.leases import Lease
from shared.formats.exportlines import MalformedInput, Problem, Problems
from shared.imports.reimport import (
    CheckedFile,
    ReimportConflict,
    Reimporter,
    SiteBusy,
    check_file,
)
from shared.imports.scan import Importer
from shared.services import Services
from shared.store.revisions import EventStore, FileEnd, RevisionMeta
from shared.store.revisionwriter import Limits
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.shared.filetools.exportset import JAN_31_S, ndjson

pytestmark = pytest.mark.timeout(120)

SITE = "acme"


def no_s3() -> S3:
    raise AssertionError("no S3 here")


def events(count: int, tag: str = "r") -> list[dict[str, Any]]:
    return [{"_p": f"{tag}{i}", "_t": JAN_31_S + 7 * i, "_n": "Ordered", "Größe": i % 3}
            for i in range(count)]


def stored(services: Services) -> list[tuple[RevisionMeta, list[dict[str, Any]]]]:
    """Every revision of the site, in order: its metadata and its lines."""
    out = []
    for info in services.store.objects(SITE):
        number = int(info.key.rpartition("/")[2].removesuffix(".json"))
        head = services.store.head(SITE, number)
        assert head is not None
        body = services.store.s3.read_bytes(services.store.bucket, info.key)
        out.append((head[0], [orjson.loads(raw) for raw in body.splitlines()]))
    return out


def reimported_lines(services: Services) -> list[dict[str, Any]]:
    return [line for meta, lines in stored(services) if meta.source == "reimport"
            for line in lines]


def make_file(tmp_path: Path, lines: list[dict[str, Any]], name: str = "export.json",
              extra: bytes = b"") -> tuple[Input, CheckedFile, bytes]:
    content = ndjson(lines) + extra
    (tmp_path / name).write_bytes(content)
    inp = resolve_input(str(tmp_path / name), no_s3)
    return inp, check_file(inp.only_file(), Problems()), content


def reimporter(services: Services, store: EventStore | None = None,
               per_revision: int = 10) -> Reimporter:
    return Reimporter(store or services.store, services.reports, services.markers,
                      services.redis, services.tail_cache, services.clock, services.metrics,
                      limits=Limits(max_events_per_revision=per_revision))


def csv_revision(services: Services, number: int) -> None:
    """A revision as the CSV import writes it, so reimport numbering starts after it."""
    services.store.write(SITE, RevisionMeta(
        number=number, events=1, min_t=1, max_t=1, written_at="2024-01-01T00:00:00Z",
        source="csv", source_key="accounts.csv", source_etag='"e"', record_start=1,
        record_end=1, byte_start=0, byte_end=10, line_end=2, rejected=0, file_end=FileEnd.DONE,
        file_first_revision=number), b'{"_p":"csv","_t":1}\n')


def test_reimport_keeps_t_and_records_what_each_revision_covers(
        tmp_path: Path, services: Services, site: SiteConfig) -> None:
    # Given a site with one revision, and a file of 24 events and an alias line (no _t)
    csv_revision(services, 1)
    lines = [*events(24)[:12], {"_p": "r0", "_p2": "r0@example.com"}, *events(24)[12:]]
    inp, checked, content = make_file(tmp_path, lines)
    # When it is reimported, 10 lines per revision
    result = reimporter(services).run(SITE, inp.only_file(), checked)
    # Then revisions 2..4 hold the lines exactly, _t kept, in file order
    assert (result.outcome, result.written, result.lines_imported) == ("done", [2, 3, 4], 25)
    revisions = stored(services)
    assert [m.number for m, _ in revisions] == [1, 2, 3, 4]
    assert reimported_lines(services) == lines
    # And each names the file by its content hash and covers a contiguous range of it
    metas = [m for m, _ in revisions[1:]]
    file_id = "sha256:" + hashlib.sha256(content).hexdigest()
    assert checked.file_id == file_id
    assert {(m.source, m.source_key, m.source_etag, m.file_first_revision) for m in metas} == {
        ("reimport", "export.json", file_id, 2)}
    assert [(m.record_start, m.record_end, m.line_end, m.events) for m in metas] == [
        (1, 10, 10, 10), (11, 20, 20, 10), (21, 25, 25, 5)]
    assert [m.byte_start for m in metas] == [0, metas[0].byte_end, metas[1].byte_end]
    assert metas[-1].byte_end == len(content)
    assert [m.file_end for m in metas] == [FileEnd.OPEN, FileEnd.OPEN, FileEnd.DONE]
    assert (metas[0].min_t, metas[0].max_t) == (JAN_31_S, JAN_31_S + 7 * 9)
    # And a second run finds nothing to do and writes nothing
    again = reimporter(services).run(SITE, inp.only_file(), checked)
    assert (again.outcome, again.written, again.first_revision, again.last_revision) == (
        "already", [], 2, 4)
    assert len(stored(services)) == 4


def test_a_stopped_run_is_continued_by_the_next_exactly_once(
        tmp_path: Path, services: Services, site: SiteConfig) -> None:
    lines = events(50)
    inp, checked, _ = make_file(tmp_path, lines)
    # Given a run asked to stop once two revisions exist
    first = reimporter(services, per_revision=7).run(
        SITE, inp.only_file(), checked, should_stop=lambda: len(stored(services)) >= 2)
    assert (first.outcome, first.written, first.next_line) == ("stopped", [1, 2], 15)
    assert reimported_lines(services) == lines[:14]
    # When the same file is reimported again
    second = reimporter(services, per_revision=7).run(SITE, inp.only_file(), checked)
    # Then it starts at line 15 and every line is in the store exactly once, in order
    assert second.outcome == "done" and second.written == [3, 4, 5, 6, 7, 8]
    assert reimported_lines(services) == lines
    assert [m.record_start for m, _ in stored(services)] == [1, 8, 15, 22, 29, 36, 43, 50]


class _Crash(BaseException):
    """The process dying: nothing after it runs (not even ``except Exception``)."""


class _DiesAfterWrites(EventStore):
    """An event store whose process dies right after its ``n``-th revision was written."""

    def __init__(self, store: EventStore, n: int) -> None:
        super().__init__(store.s3, store.bucket)
        self.left = n

    def write(self, site: str, meta: RevisionMeta, body: bytes | bytearray) -> None:
        super().write(site, meta, body)
        self.left -= 1
        if self.left == 0:
            raise _Crash


def test_a_crash_between_a_revision_and_its_marker_is_caught_up_from_the_revisions(
        tmp_path: Path, services: Services, site: SiteConfig) -> None:
    lines = events(40)
    inp, checked, _ = make_file(tmp_path, lines)
    # Given a run that died just after writing its third revision, before the marker knew
    with pytest.raises(_Crash):
        reimporter(services, _DiesAfterWrites(services.store, 3)).run(
            SITE, inp.only_file(), checked)
    marker = services.markers.read(SITE, checked.file_id)
    assert marker is not None and marker.last_revision == 2 and not marker.done
    assert len(stored(services)) == 3
    # When the file is reimported again
    result = reimporter(services).run(SITE, inp.only_file(), checked)
    # Then it continues after revision 3 (found by looking at it), nothing twice
    assert result.written == [4]
    assert reimported_lines(services) == lines


def test_csv_imports_between_a_crash_and_the_rerun_are_stepped_over(
        tmp_path: Path, services: Services, site: SiteConfig, s3: S3) -> None:
    lines = events(30)
    inp, checked, _ = make_file(tmp_path, lines)
    with pytest.raises(_Crash):
        reimporter(services, _DiesAfterWrites(services.store, 2)).run(
            SITE, inp.only_file(), checked)
    # Given the recurring import wrote revisions 3 to 5 meanwhile (the last, without events,
    # says its file ended just after a full revision)
    s3.put(site.import_bucket, "accounts.csv", b"Identity,Timestamp,Event\n" + b"".join(
        b"c%d,1706659200,E\n" % i for i in range(4)))
    Importer(services.store, services.reports, services.tail_cache,
             services.clock, services.metrics,
             Limits(max_events_per_revision=2)).scan(site, s3, budget_s=60)
    assert [m.source for m, _ in stored(services)] == ["reimport"] * 2 + ["csv"] * 3
    # When the reimport runs again
    result = reimporter(services).run(SITE, inp.only_file(), checked)
    # Then its revisions follow the CSV ones and its lines are there once each
    assert result.written == [6]
    assert reimported_lines(services) == lines
    assert [m.number for m, _ in stored(services)] == [1, 2, 3, 4, 5, 6]


def test_a_held_import_lease_keeps_the_reimport_out(
        tmp_path: Path, services: Services, site: SiteConfig) -> None:
    inp, checked, _ = make_file(tmp_path, events(5))
    holder = Lease(services.redis, "import", SITE)
    assert holder.acquire()
    with holder, pytest.raises(SiteBusy, match="site acme is busy: an import holds its lease"):
        reimporter(services).run(SITE, inp.only_file(), checked)
    assert stored(services) == []
    assert services.markers.read(
        SITE, checked.file_id) is None


class _RacedStore(EventStore):
    """Another writer creates revision ``number`` just before this one tries to."""

    def __init__(self, store: EventStore, number: int) -> None:
        super().__init__(store.s3, store.bucket)
        self.number = number

    def write(self, site: str, meta: RevisionMeta, body: bytes | bytearray) -> None:
        if meta.number == self.number:
            csv_revision_store = EventStore(self.s3, self.bucket)
            csv_revision_store.write(site, RevisionMeta(**{**meta.__dict__, "source": "csv"}),
                                     b'{"_p":"other","_t":1}\n')
        super().write(site, meta, body)


def test_a_revision_number_taken_by_another_writer_stops_the_run_clearly(
        tmp_path: Path, services: Services, site: SiteConfig) -> None:
    lines = events(30)
    inp, checked, _ = make_file(tmp_path, lines)
    with pytest.raises(ReimportConflict) as caught:
        reimporter(services, _RacedStore(services.store, 2)).run(SITE, inp.only_file(), checked)
    assert str(caught.value) == (
        "revision 2 of site acme was written by another writer during the reimport of "
        "export.json; nothing was overwritten, and running the same command again continues "
        "after line 10")
    assert stored(services)[1][1] == [{"_p": "other", "_t": 1}]
    # And the rerun continues after the other writer's revision
    result = reimporter(services).run(SITE, inp.only_file(), checked)
    assert result.written == [3, 4]
    assert reimported_lines(services) == lines


def test_gzip_and_plain_copies_of_one_file_are_the_same_file(
        tmp_path: Path, services: Services, site: SiteConfig) -> None:
    lines = events(12)
    inp, checked, content = make_file(tmp_path, lines)
    (tmp_path / "copy.json.gz").write_bytes(gzip.compress(content))
    gz_inp = resolve_input(str(tmp_path / "copy.json.gz"), no_s3)
    gz_checked = check_file(gz_inp.only_file(), Problems())
    assert gz_checked.file_id == checked.file_id and gz_checked.gzipped
    reimporter(services).run(SITE, inp.only_file(), checked)
    assert reimporter(services).run(SITE, gz_inp.only_file(), gz_checked).outcome == "already"
    assert reimported_lines(services) == lines


def test_a_gzip_file_stopped_midway_resumes_inside_the_compressed_stream(
        tmp_path: Path, services: Services, site: SiteConfig) -> None:
    lines = events(35)
    (tmp_path / "e.json.gz").write_bytes(gzip.compress(ndjson(lines)))
    inp = resolve_input(str(tmp_path / "e.json.gz"), no_s3)
    checked = check_file(inp.only_file(), Problems())
    first = reimporter(services).run(SITE, inp.only_file(), checked,
                                     should_stop=lambda: len(stored(services)) >= 1)
    assert first.outcome == "stopped"
    assert reimporter(services).run(SITE, inp.only_file(), checked).written == [2, 3, 4]
    assert reimported_lines(services) == lines


BAD = (b'{"_p":"x","_n":"no time"}\n'  # an event without _t
       b"{oops\n"
       b'{"_p":"y","_t":1706659200000}\n'  # milliseconds
       b"\n")


def test_bad_lines_are_counted_where_they_were_and_never_stored(
        tmp_path: Path, services: Services, site: SiteConfig) -> None:
    lines = events(12)
    content = ndjson(lines[:5]) + BAD + ndjson(lines[5:])
    (tmp_path / "export.json").write_bytes(content)
    inp = resolve_input(str(tmp_path / "export.json"), no_s3)
    found: list[Problem] = []
    checked = check_file(inp.only_file(), Problems(report=found.append))
    assert [(p.line, p.reason.split(":")[0]) for p in found] == [
        (6, "missing _t (only alias lines may have no timestamp)"), (7, "bad JSON"),
        (8, "_t 1706659200000 is out of range (milliseconds?)"), (9, "blank line")]
    result = reimporter(services).run(SITE, inp.only_file(), checked)
    assert reimported_lines(services) == lines and result.lines_rejected == 4
    assert [(m.record_start, m.record_end, m.rejected) for m, _ in stored(services)] == [
        (1, 14, 4), (15, 16, 0)]


def test_strict_checking_stops_before_anything_is_written(
        tmp_path: Path, services: Services, site: SiteConfig) -> None:
    (tmp_path / "export.json").write_bytes(ndjson(events(3)) + BAD)
    inp = resolve_input(str(tmp_path / "export.json"), no_s3)
    with pytest.raises(MalformedInput, match=r"export\.json line 4: missing _t") as caught:
        check_file(inp.only_file(), Problems(strict=True))
    assert isinstance(caught.value, UserError)  # exit status 2: the input is at fault
    assert stored(services) == []


def test_the_recurring_import_goes_on_after_a_reimport(
        tmp_path: Path, services: Services, site: SiteConfig, s3: S3) -> None:
    # Given a CSV file whose import stopped part way (records 1..20 in revisions 1 and 2)
    header = b"Identity,Timestamp,Event\n"
    s3.put(site.import_bucket, "accounts.csv",
           header + b"".join(b"a%d,%d,Signed Up\n" % (i, JAN_31_S + i) for i in range(35)))
    importer = Importer(services.store, services.reports, services.tail_cache,
                        services.clock, services.metrics,
                        Limits(max_events_per_revision=10))
    first = importer.scan(site, s3, budget_s=60, should_stop=lambda: len(stored(services)) >= 1)
    assert first.outcome == "interrupted" and first.next_record == 21
    # And a reimport that wrote revisions above it
    lines = events(15)
    inp, checked, _ = make_file(tmp_path, lines)
    assert reimporter(services).run(SITE, inp.only_file(), checked).written == [3, 4]
    # When the recurring import scans again, with a new file waiting too
    s3.put(site.import_bucket, "accounts2.csv", header + b"b0,1706659300,Paid\n")
    second = importer.scan(site, s3, budget_s=60)
    # Then it resumes the CSV file at record 21 (not from its start), then imports the new one
    assert second.outcome == "done"
    assert second.files_completed == ["accounts.csv", "accounts2.csv"]
    csv_lines = [line["_p"] for meta, ls in stored(services) if meta.source == "csv"
                 for line in ls]
    assert csv_lines == [f"a{i}" for i in range(35)] + ["b0"]
    assert [(m.number, m.source, m.record_start) for m, _ in stored(services)] == [
        (1, "csv", 1), (2, "csv", 11), (3, "reimport", 1), (4, "reimport", 11),
        (5, "csv", 21), (6, "csv", 31), (7, "csv", 1)]
    assert reimported_lines(services) == lines
