"""The scan against a real S3 endpoint: files, revisions, moves, resume."""

from __future__ import annotations

import time

import orjson
import pytest

from shared.clock import FrozenClock
from shared.imports.cursor import CSV_SOURCE
from shared.imports.finish import Finisher
from shared.imports.scan import Importer
from shared.services import Services
from shared.store.revisions import RevisionMeta, revision_key
from shared.store.revisionwriter import Limits, RevisionWriter
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.conftest import gz
from tests.counting import S3RequestLog, s3_requests

pytestmark = pytest.mark.timeout(60)


def revisions(s3: S3, services: Services, site: str) -> list[list[dict[str, object]]]:
    out = []
    for info in services.store.objects(site):
        out.append([orjson.loads(line) for line in
                    s3.read_bytes(services.settings.store_bucket, info.key).splitlines()])
    return out


def importer(services: Services, **limits: int) -> Importer:
    return Importer(services.store, services.reports, services.tail_cache,
                    services.clock, services.metrics,
                    Limits(**limits))


def test_files_import_in_byte_order_and_move_to_completed(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given three matching files, one gzipped, and one that does not match
    s3.put(site.import_bucket, "accounts-b.csv", b"Identity,Timestamp,Event\nb,2,B\n")
    s3.put(site.import_bucket, "accounts-a.csv.gz", gz("Identity,Timestamp,Event\na,1,A\n"))
    s3.put(site.import_bucket, "accounts.csv", b"Identity,Timestamp,Event\nz,0,Z\n")
    s3.put(site.import_bucket, "other.csv", b"Identity,Timestamp,Event\nx,1,X\n")
    # When the site is scanned
    result = importer(services).scan(site, s3, budget_s=30)
    # Then each file became one revision, in byte order of the keys
    assert result.outcome == "done"
    assert [r[0]["_p"] for r in revisions(s3, services, "acme")] == ["a", "b", "z"]
    keys = sorted(i.key for i in s3.list(site.import_bucket))
    day = services.clock.now_s()
    assert "other.csv" in keys
    assert [k for k in keys if not k.startswith("completed_imports/")] == ["other.csv"]
    assert len([k for k in keys if k.startswith("completed_imports/")]) == 3
    del day


def test_budget_stops_with_progress_committed_and_next_scan_resumes(
        s3: S3, services: Services, site: SiteConfig) -> None:
    rows = "".join(f"user{i},{1700000000 + i},E{i}\n" for i in range(10_000))
    s3.put(site.import_bucket, "accounts.csv", ("Identity,Timestamp,Event\n" + rows).encode())
    clock = FrozenClock()
    imp = Importer(services.store, services.reports, services.tail_cache, clock, services.metrics,
                   Limits(max_events_per_revision=1000))
    stops = iter([False, False, True])

    # When the scan must stop after a few checkpoints
    first = imp.scan(site, s3, budget_s=300, should_stop=lambda: next(stops, True))
    assert first.outcome == "interrupted"  # asked to stop, not its budget
    assert first.current_file == "accounts.csv"
    done_so_far = sum(len(r) for r in revisions(s3, services, "acme"))
    assert 0 < done_so_far < 10_000
    assert first.next_record == done_so_far + 1
    # Then the next scan resumes at the next row and finishes, each row exactly once, in order
    second = imp.scan(site, s3, budget_s=300)
    assert second.outcome == "done"
    lines = [line for r in revisions(s3, services, "acme") for line in r]
    assert [line["_p"] for line in lines] == [f"user{i}" for i in range(10_000)]
    meta = RevisionMeta.from_metadata(
        s3.head(services.settings.store_bucket, revision_key("acme", 1)).metadata)  # type: ignore[union-attr]
    assert meta.source_key == "accounts.csv" and meta.record_start == 1


def test_cursor_is_found_below_other_revisions_and_cached(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a CSV revision, then 30 revisions from another source above it
    s3.put(site.import_bucket, "accounts.csv", b"Identity,Timestamp,Event\na,1,E\n")
    imp = importer(services)
    imp.scan(site, s3, budget_s=30)
    first = services.store.head("acme", 1)
    assert first is not None
    for n in range(2, 32):
        meta = RevisionMeta(**{**first[0].__dict__, "number": n, "source": "reimport"})
        services.store.write("acme", meta, b'{"_p":"x"}\n')
    heads: list[str] = []
    real_head = services.store.s3.head

    def counting_head(bucket: str, key: str):  # type: ignore[no-untyped-def]
        heads.append(key)
        return real_head(bucket, key)

    services.store.s3.head = counting_head  # type: ignore[method-assign]
    # When the cursor is looked up twice
    cursor = imp.revisions.cursor("acme")
    walked = len(heads)
    heads.clear()
    cursor_again = imp.revisions.cursor("acme")
    # Then it is the CSV revision, found by walking back once, then from the cache
    assert cursor.latest == cursor_again.latest == 31
    assert cursor.meta is not None and cursor.meta.number == 1 and cursor.meta.source == "csv"
    assert cursor_again.meta is not None and cursor_again.meta.number == 1
    assert walked >= 31
    assert len(heads) <= 2  # the tail hint and the cached cursor


@pytest.mark.parametrize("tail", ["", ",1700000009,bad\n,1700000010,bad\n"],
                         ids=["ends-on-a-full-revision", "only-bad-rows-after-it"])
def test_a_file_whose_last_revision_is_not_its_end_is_still_finished(
        s3: S3, services: Services, site: SiteConfig, tail: str) -> None:
    # Given a file whose good rows fill revisions exactly, maybe followed by bad rows only
    rows = "".join(f"u{i},{1700000000 + i},E\n" for i in range(4))
    s3.put(site.import_bucket, "accounts.csv", ("Identity,Timestamp,Event\n" + rows + tail)
           .encode())
    imp = importer(services, max_events_per_revision=2)
    # When it is imported, and then scanned again
    first = imp.scan(site, s3, budget_s=30)
    again = imp.scan(site, s3, budget_s=30)
    # Then it was completed once, nothing is reported failed later, and a new file of the same
    # name is a new file, imported from its first row
    assert first.files_completed == ["accounts.csv"] and again.files_failed == []
    assert not [i.key for i in s3.list(site.import_bucket, "failed_imports/")]
    s3.put(site.import_bucket, "accounts.csv", b"Identity,Timestamp,Event\nnew,1700000100,E\n")
    third = imp.scan(site, s3, budget_s=30)
    assert third.files_completed == ["accounts.csv"] and third.files_failed == []
    lines = [line["_p"] for r in revisions(s3, services, "acme") for line in r]
    assert lines == ["u0", "u1", "u2", "u3", "new"]


def test_a_run_stopped_on_the_last_record_finishes_the_file_next_time(
        s3: S3, services: Services, site: SiteConfig) -> None:
    rows = "".join(f"u{i},{1700000000 + i},E\n" for i in range(2048))
    s3.put(site.import_bucket, "accounts.csv", ("Identity,Timestamp,Event\n" + rows).encode())
    imp = importer(services)
    # Given a run that stops at its check on the file's last record (checks come every 2048)
    stops = iter([False, True])
    first = imp.scan(site, s3, budget_s=30, should_stop=lambda: next(stops, True))
    assert first.outcome == "interrupted" and first.rows_imported == 2048
    # When the next scan finds nothing left to read
    second = imp.scan(site, s3, budget_s=30)
    # Then the file is finished and moved, its rows imported exactly once
    assert second.files_completed == ["accounts.csv"]
    assert sum(len(r) for r in revisions(s3, services, "acme")) == 2048
    assert imp.scan(site, s3, budget_s=30).files_failed == []



def requests_for_files(log: S3RequestLog) -> list[tuple[str, str]]:
    """(method, object key or "LIST") of each request, leaving out the site's bookkeeping
    (its claims and status documents)."""
    out = []
    for method, path, _ in log.requests:
        bucket_and_key, _, query = path.lstrip("/").partition("?")
        key = bucket_and_key.partition("/")[2]
        if "list-type=2" in query:
            out.append((method, "LIST " + next(p for p in query.split("&")
                                               if p.startswith("prefix="))))
        elif not key.startswith(("claims/", "fleet/", "sites/acme/status/")):
            out.append((method, key))
    return out


def test_a_clean_file_costs_six_requests_and_a_bad_row_adds_its_report(
        s3: S3, services: Services, site: SiteConfig) -> None:
    bucket, store = site.import_bucket, services.settings.store_bucket
    day = time.strftime("%Y/%m/%d", time.gmtime(services.clock.now_s()))
    costs = []
    # When a file without a bad row is imported, then one with a bad row
    for name, body in [("accounts-1.csv", b"Identity,Timestamp,Event\nu1,1700000001,E1\n"),
                       ("accounts-2.csv", b"Identity,Timestamp,Event\nu2,x,E2\n")]:
        s3.put(bucket, name, body)
        with s3_requests(bucket, store) as log:
            importer(services).scan(site, s3, budget_s=30)
        costs.append(requests_for_files(log))
    # Then the clean file cost its read, its revision, two looks at the destination, the copy
    # and the delete: no listing of bad-row reports, no delete of a report that is not there
    clean, bad = costs
    done = f"completed_imports/{day}/accounts-1.csv"
    assert clean == [("GET", "LIST prefix=accounts"), ("GET", "LIST prefix=sites/acme/revisions/"),
                     ("GET", "accounts-1.csv"), ("PUT", "sites/acme/revisions/000000000001.json"),
                     ("HEAD", done), ("HEAD", f"{done}.errors.csv"), ("PUT", done),
                     ("DELETE", "accounts-1.csv")]
    # And the file with a bad row had its stored report read and written beside its copy
    assert ("GET", "LIST prefix=sites/acme/rejects/") in bad
    assert ("PUT", f"completed_imports/{day}/accounts-2.csv.errors.csv") in bad


def test_a_file_replaced_after_its_last_revision_is_left_in_place_not_moved(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a file imported to its end, whose key was uploaded again before the move
    bucket = site.import_bucket
    s3.put(bucket, "accounts-1.csv", b"Identity,Timestamp,Event\nu1,1700000001,E1\n")
    listed = next(iter(s3.list(bucket, "accounts-1.csv")))
    s3.put(bucket, "accounts-1.csv", b"Identity,Timestamp,Event\nu2,1700000002,E2\n")
    finisher = Finisher(s3, bucket, RevisionWriter(
        services.store, services.reports, "acme", CSV_SOURCE, services.clock, services.metrics),
        services.reports, services.clock, services.metrics)
    # When the finisher moves it as it was listed
    finisher.complete(listed, None, 0, services.clock.now_s(), no_bad_rows=True)
    # Then the new upload stays where it is, and nothing was copied
    assert [i.key for i in s3.list(bucket)] == ["accounts-1.csv"]
    assert s3.read_bytes(bucket, "accounts-1.csv").endswith(b"u2,1700000002,E2\n")
    assert finisher.finished.completed == []


def test_a_file_resumed_on_a_clean_tail_still_reports_the_bad_rows_of_its_first_run(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a file with one bad row among its first records and none after
    rows = "".join(f"user{i},{1700000000 + i},E{i}\n" if i != 2 else f"user{i},x,E{i}\n"
                   for i in range(1, 31))
    s3.put(site.import_bucket, "accounts.csv", ("Identity,Timestamp,Event\n" + rows).encode())
    # When a first scan stops after its first revision (10 records) and a second one finishes
    answers = iter([False])
    first = importer(services, max_events_per_revision=10).scan(
        site, s3, budget_s=30, should_stop=lambda: next(answers, True))
    assert first.outcome != "done"
    importer(services, max_events_per_revision=10).scan(site, s3, budget_s=30)
    # Then the bad row of the first run is in the file's report
    day = time.strftime("%Y/%m/%d", time.gmtime(services.clock.now_s()))
    report = s3.read_bytes(site.import_bucket,
                           f"completed_imports/{day}/accounts.csv.errors.csv").decode()
    assert len(report.splitlines()) == 2 and "user2,x,E2" in report
