"""The export cycle against moto's S3 server: files, index.csv and status.csv cell by cell,
cutoff and lookback, no repopulation, re-export, both access modes, faults."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import orjson
import pytest

from shared.clock import FrozenClock
from shared.errors import StorageUnavailable
from shared.exports.cutoff import lookback_start, resolve_cutoff
from shared.exports.destination import Destination
from shared.exports.exporter import COPY_WINDOW, ExportBlocked, Exporter, ExportResult
from shared.formats.exportfiles import INDEX_HEADER, STATUS_HEADER
from shared.formats.times import iso_utc, parse_iso_utc
from shared.services import Services
from shared.store.ledger import ExportLedger
from shared.store.revisions import EventStore, FileEnd, RevisionMeta, revision_key
from shared.store.s3 import S3
from shared.store.sites import SiteConfig

pytestmark = pytest.mark.timeout(60)

NOW_S = parse_iso_utc("2026-11-22T12:00:00Z")
DAY_S = 86400


def write_revision(store: EventStore, site: str, number: int, written_at_s: float,
                   times: list[int]) -> bytes:
    body = b"".join(orjson.dumps({"_p": f"user{number}-{i}", "_t": t, "_n": "Did"}) + b"\n"
                    for i, t in enumerate(times))
    meta = RevisionMeta(number=number, events=len(times), min_t=min(times, default=None),
                        max_t=max(times, default=None), written_at=iso_utc(written_at_s),
                        source="csv", source_key="accounts.csv", source_etag='"x"',
                        record_start=1, record_end=len(times), byte_start=0, byte_end=1,
                        line_end=1, rejected=0, file_end=FileEnd.DONE, file_first_revision=number)
    store.write(site, meta, body)
    return body


def read_csv(s3: S3, bucket: str, key: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(s3.read_bytes(bucket, key).decode())))


class Fixture:
    def __init__(self, services: Services, site: SiteConfig, s3: S3) -> None:
        self.services = services
        self.site = site
        self.s3 = s3
        self.clock = FrozenClock(NOW_S)
        self.exporter = Exporter(services.store,
                                 ExportLedger(s3, services.settings.store_bucket),
                                 services.tail_cache, self.clock, services.metrics)
        self.dest = Destination.for_site(site, s3)

    def revision(self, number: int, days_ago: float, times: list[int]) -> bytes:
        return write_revision(self.services.store, self.site.site_id, number,
                              NOW_S - days_ago * DAY_S, times)

    def cycle(self, cutoff: str | None = None, lookback_days: int = 183,
              dest: Destination | None = None, **kw: object):  # type: ignore[no-untyped-def]
        return self.exporter.cycle(self.site, dest or self.dest, 60,
                                   resolve_cutoff(cutoff, NOW_S),
                                   lookback_start(NOW_S, lookback_days), **kw)  # type: ignore[arg-type]

    def blocked_cycle(self) -> tuple[ExportResult, str]:
        """A cycle that must stop before a revision it cannot export: what it exported first,
        and why it stopped."""
        with pytest.raises(ExportBlocked) as blocked:
            self.cycle()
        return blocked.value.result, str(blocked.value)

    def object_keys(self) -> list[str]:
        return sorted(i.key for i in self.s3.list(self.site.export_bucket or ""))


@pytest.fixture
def fx(services: Services, site: SiteConfig, s3: S3) -> Fixture:
    return Fixture(services, site, s3)


def test_first_export_copies_revisions_and_writes_index_and_status_cell_by_cell(
        fx: Fixture) -> None:
    # Given three revisions written yesterday and one written today
    bodies = {1: fx.revision(1, 1.2, [1700000000, 1700000500]),
              2: fx.revision(2, 1.1, [1700001000]),
              3: fx.revision(3, 1.0, [1699999000, 1700002000])}
    fx.revision(4, 0.1, [1700003000])
    # When the regular cycle runs (cutoff: 00:00 UTC today)
    result = fx.cycle()
    # Then revisions 1..3 are in the bucket byte for byte, and 4 is not yet
    assert result.outcome == "done" and result.exported == [1, 2, 3]
    bucket = fx.site.export_bucket or ""
    assert fx.object_keys() == ["index.csv", "revisions/1.json", "revisions/2.json",
                         "revisions/3.json", "status.csv"]
    for n, body in bodies.items():
        assert fx.s3.read_bytes(bucket, f"revisions/{n}.json") == body
    assert read_csv(fx.s3, bucket, "index.csv") == [
        list(INDEX_HEADER),
        ["revisions/1.json", "1700000000", "1700000500", "2023-11-14T22:13:20Z",
         "2023-11-14T22:21:40Z"],
        ["revisions/2.json", "1700001000", "1700001000", "2023-11-14T22:30:00Z",
         "2023-11-14T22:30:00Z"],
        ["revisions/3.json", "1699999000", "1700002000", "2023-11-14T21:56:40Z",
         "2023-11-14T22:46:40Z"],
    ]
    # status.csv counts every revision, including the one not exportable yet
    assert read_csv(fx.s3, bucket, "status.csv") == [
        list(STATUS_HEADER), ["4", "3", "1700002000", "2023-11-14T22:46:40Z"]]
    assert result.lag_revisions == 1


def test_incremental_export_adds_only_new_revisions(fx: Fixture) -> None:
    fx.revision(1, 2, [1700000000])
    fx.cycle()
    # Given a revision written after the first export
    fx.revision(2, 1.5, [1700000100])
    # When the next cycle runs
    result = fx.cycle()
    # Then only revision 2 is copied and the index gains exactly one row
    assert result.exported == [2]
    rows = read_csv(fx.s3, fx.site.export_bucket or "", "index.csv")
    assert [r[0] for r in rows[1:]] == ["revisions/1.json", "revisions/2.json"]


def test_cutoff_now_and_iso_move_the_cutoff_for_one_run(fx: Fixture) -> None:
    fx.revision(1, 0.3, [1700000000])
    fx.revision(2, 0.1, [1700000100])
    assert fx.cycle().exported == []
    # An ISO cutoff between the two revisions exports the first only
    between = iso_utc(NOW_S - 0.2 * DAY_S)
    assert fx.cycle(cutoff=between).exported == [1]
    assert fx.cycle(cutoff="now").exported == [2]


def test_lookback_passes_over_old_revisions_for_good(fx: Fixture) -> None:
    # Given a revision older than the lookback and one inside it
    fx.revision(1, 200, [1600000000])
    fx.revision(2, 10, [1700000000])
    # When the cycle runs
    result = fx.cycle()
    # Then only the recent one is exported, and the position passed the old one
    assert result.exported == [2] and result.position == 2
    assert "revisions/1.json" not in fx.object_keys()
    status = read_csv(fx.s3, fx.site.export_bucket or "", "status.csv")
    assert status[1][:2] == ["2", "1"]
    # And a later cycle does not come back for it
    assert fx.cycle().exported == []


def test_deleted_file_is_not_repopulated_but_reexport_restores_it(fx: Fixture) -> None:
    for n in (1, 2, 3):
        fx.revision(n, 2, [1700000000 + n])
    fx.cycle()
    bucket = fx.site.export_bucket or ""
    # Given the customer deleted revisions/2.json
    fx.s3.delete(bucket, "revisions/2.json")
    # When later cycles run, it stays deleted (bucketbridge does not infer from the bucket)
    fx.revision(4, 1.5, [1700000004])
    assert fx.cycle().exported == [4]
    assert "revisions/2.json" not in fx.object_keys()
    # When an operator re-exports 2..3 on purpose
    result = fx.exporter.reexport(fx.site, fx.dest, 2, 3, 60)
    # Then the file is back, the position is unchanged and the index lists each file once
    assert result.exported == [2, 3]
    assert "revisions/2.json" in fx.object_keys()
    ledger = ExportLedger(fx.s3, fx.services.settings.store_bucket).load("acme")
    assert ledger.position == 4
    names = [r[0] for r in read_csv(fx.s3, bucket, "index.csv")[1:]]
    assert names == [f"revisions/{n}.json" for n in (1, 2, 3, 4)]


def test_reexport_is_limited_to_what_was_exported(fx: Fixture) -> None:
    fx.revision(1, 2, [1700000000])
    fx.revision(2, 0.1, [1700000001])
    fx.cycle()
    result = fx.exporter.reexport(fx.site, fx.dest, 1, None, 60)
    assert result.exported == [1]
    assert "revisions/2.json" not in fx.object_keys()


def test_missing_revision_stops_the_cycle_before_it(fx: Fixture) -> None:
    fx.revision(1, 2, [1700000000])
    fx.revision(2, 2, [1700000001])
    fx.revision(3, 2, [1700000002])
    # Given revision 2 is missing from the store
    fx.s3.delete(fx.services.settings.store_bucket, revision_key("acme", 2))
    # When the cycle runs
    result, error = fx.blocked_cycle()
    # Then it exports 1 and stops before 2 with an error naming it; 3 is not exported
    assert result.exported == [1]
    assert "revision 2" in error
    assert fx.object_keys() == ["index.csv", "revisions/1.json", "status.csv"]


def test_unreadable_revision_stops_the_cycle_with_its_name(fx: Fixture) -> None:
    fx.revision(1, 2, [1700000000])
    # Given revision 2 exists but has no bucketbridge metadata
    fx.s3.put(fx.services.settings.store_bucket, revision_key("acme", 2), b"garbage\n")
    result, error = fx.blocked_cycle()
    assert result.exported == [1]
    assert "revision 2" in error and "unreadable" in error


class _CrashAfter:
    """A destination whose S3 access fails after ``n`` copies, like a process that died."""

    def __init__(self, s3: S3, n: int) -> None:
        self._s3 = s3
        self._left = n

    def copy(self, *args: object, **kwargs: object) -> None:
        if self._left == 0:
            raise StorageUnavailable("simulated crash")
        self._left -= 1
        self._s3.copy(*args, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self._s3, name)


def test_run_that_dies_mid_export_is_resumed_without_gaps_or_duplicates(fx: Fixture) -> None:
    for n in range(1, 8):
        fx.revision(n, 2, [1700000000 + n])
    # Given a run that copies three revisions and then dies before committing
    crashing = replace(fx.dest, s3=_CrashAfter(fx.s3, 3))  # type: ignore[arg-type]
    with pytest.raises(StorageUnavailable):
        fx.cycle(dest=crashing)
    ledger = ExportLedger(fx.s3, fx.services.settings.store_bucket).load("acme")
    assert ledger.position == 0  # nothing was recorded as exported
    # When the next cycle runs
    result = fx.cycle()
    # Then every revision is exported, in order, and the index names each exactly once
    assert result.exported == list(range(1, 8))
    names = [r[0] for r in read_csv(fx.s3, fx.site.export_bucket or "", "index.csv")[1:]]
    assert names == [f"revisions/{n}.json" for n in range(1, 8)]


def test_budget_stop_commits_what_was_copied(fx: Fixture) -> None:
    # Given more revisions than one step of the cycle looks at
    total = COPY_WINDOW * 2 + 5
    for n in range(1, total + 1):
        fx.revision(n, 2, [1700000000 + n])
    # When the run must stop after its first step
    calls = iter([False, True])
    result = fx.cycle(should_stop=lambda: next(calls, True))
    # Then what it copied is committed, and the next run goes on from there
    assert result.outcome == "interrupted" and result.exported == list(range(1, COPY_WINDOW + 1))
    assert ExportLedger(fx.s3, fx.services.settings.store_bucket).load("acme").position == \
        COPY_WINDOW
    assert fx.cycle().exported == list(range(COPY_WINDOW + 1, total + 1))


def test_a_gap_stops_the_cycle_before_it_even_within_one_step(fx: Fixture) -> None:
    # Given revisions 1..10 with 4 missing: one step of the cycle sees all of them
    for n in range(1, 11):
        fx.revision(n, 2, [1700000000 + n])
    fx.s3.delete(fx.services.settings.store_bucket, revision_key("acme", 4))
    result, _error = fx.blocked_cycle()
    # Then nothing after the gap reaches the customer's bucket
    assert result.exported == [1, 2, 3]
    assert fx.object_keys() == ["index.csv", "revisions/1.json", "revisions/2.json",
                                "revisions/3.json", "status.csv"]


def test_export_prefix_places_every_file_under_it(
        services: Services, s3: S3, import_bucket: str, export_bucket: str) -> None:
    site = SiteConfig(site_id="pfx", import_bucket=import_bucket, base_filename="a.csv",
                      export_bucket=export_bucket, export_prefix="km/export")
    services.sites.create(site)
    fx = Fixture(services, site, s3)
    fx.revision(1, 2, [1700000000])
    fx.cycle()
    assert fx.object_keys() == ["km/export/index.csv", "km/export/revisions/1.json",
                         "km/export/status.csv"]


def test_assumed_role_streams_through_the_worker(
        services: Services, s3: S3, import_bucket: str, export_bucket: str) -> None:
    # Given a site reached through its own role (moto's STS answers AssumeRole)
    site = SiteConfig(site_id="role", import_bucket=import_bucket, base_filename="a.csv",
                      export_bucket=export_bucket,
                      role_arn="arn:aws:iam::123456789012:role/bucketbridge-export",
                      external_id="ext-123")
    services.sites.create(site)
    fx = Fixture(services, site, s3)
    body = fx.revision(1, 2, [1700000000])
    role_s3 = services.access.for_site(site)
    # Then a client with the assumed credentials is used, cached, and not server-side copy
    assert role_s3 is not services.store_s3
    assert services.access.for_site(site) is role_s3
    dest = Destination.for_site(site, role_s3)
    assert dest.server_side_copy is False
    result = fx.cycle(dest=dest)
    assert result.exported == [1]
    assert s3.read_bytes(export_bucket, "revisions/1.json") == body
