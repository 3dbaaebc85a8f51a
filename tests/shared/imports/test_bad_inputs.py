"""The bad-input corpus, through the real scan against moto's S3 server.

Bad input never blocks: a bad row is skipped and listed beside the completed file; a bad file is
moved to ``failed_imports/`` with a readable report and the site's next file still imports; a
file that changes or disappears mid-import is reported once; a missing or denied bucket is
recorded in the site's status and tried again next scan.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import boto3
import orjson
import pytest
import redis

from shared.clock import FrozenClock, SystemClock
from shared.errors import AccessDenied, BucketMissing
from shared.formats.importkeys import FAILED_PREFIX
from shared.imports.scan import Importer, ScanResult
from shared.metrics import Metrics
from shared.services import Services
from shared.settings import Settings
from shared.store.revisions import FileEnd, RevisionMeta
from shared.store.revisionwriter import Limits
from shared.store.s3 import S3, make_client
from shared.store.sites import SiteConfig
from shared.store.sts import RoleCredentials
from workers.jobs.scan import ScanJob

pytestmark = pytest.mark.timeout(60)

# One second before midnight UTC on a leap day: files land in that day's folder.
NOW_S = datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC).timestamp()
DAY = "2024/02/29"
HEADER = b"Identity,Timestamp,Event\n"
T0 = 1_700_000_000


# -- helpers -------------------------------------------------------------------------------------


def row(n: int, prefix: str = "u") -> bytes:
    return f"{prefix}{n},{T0 + n},E{n}\n".encode()


def line(n: int, prefix: str = "u") -> dict[str, object]:
    return {"_p": f"{prefix}{n}", "_t": T0 + n, "_n": f"E{n}"}


def good_file(*numbers: int, prefix: str = "u") -> bytes:
    return HEADER + b"".join(row(n, prefix) for n in numbers)


def importer(services: Services, clock: FrozenClock | None = None,
             max_events_per_revision: int = 100_000) -> Importer:
    return Importer(services.store, services.reports, services.tail_cache,
                    clock or FrozenClock(NOW_S),
                    services.metrics, Limits(max_events_per_revision=max_events_per_revision))


def scan(services: Services, s3: S3, site: SiteConfig,
         should_stop: Callable[[], bool] = lambda: False, **limits: int) -> ScanResult:
    return importer(services, **limits).scan(site, s3, budget_s=30, should_stop=should_stop)


def stop_after_first_checkpoint() -> Callable[[], bool]:
    """``should_stop`` for a scan: go on past the first file check, stop at the first checkpoint."""
    answers = iter([False])
    return lambda: next(answers, True)


def imported(s3: S3, services: Services) -> list[dict[str, object]]:
    """Every line of every revision of site acme, in revision order."""
    out: list[dict[str, object]] = []
    for info in services.store.objects("acme"):
        out.extend(orjson.loads(x) for x in
                   s3.read_bytes(services.settings.store_bucket, info.key).splitlines())
    return out


def revision_sources(s3: S3, services: Services) -> list[tuple[str, int, int]]:
    out = []
    for info in services.store.objects("acme"):
        head = s3.head(services.settings.store_bucket, info.key)
        assert head is not None
        meta = RevisionMeta.from_metadata(head.metadata)
        out.append((meta.source_key, meta.record_start, meta.record_end))
    return out


def keys(s3: S3, bucket: str) -> list[str]:
    return sorted(i.key for i in s3.list(bucket))


def report_rows(s3: S3, bucket: str, key: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(s3.read_bytes(bucket, key).decode("utf-8"))))


def text(s3: S3, bucket: str, key: str) -> str:
    return s3.read_bytes(bucket, key).decode("utf-8")


# -- bad rows ------------------------------------------------------------------------------------

# (id, the bad row's bytes, the reason the report must give, the content it must show)
BAD_ROWS = [
    ("no-identity", b",1700000002,E2\n", "missing Identity", ",1700000002,E2"),
    ("bad-timestamp", b"u2,yesterday,E2\n", "Timestamp 'yesterday' is not whole Unix seconds",
     "u2,yesterday,E2"),
    ("milliseconds", b"u2,1700000002000,E2\n",
     "Timestamp 1700000002000 is out of range (milliseconds?)", "u2,1700000002000,E2"),
    ("missing-timestamp", b"u2,,E2\n", "missing Timestamp", "u2,,E2"),
    ("too-few-fields", b"u2,1700000002\n", "expected 3 fields, found 2", "u2,1700000002"),
    ("too-many-fields", b"u2,1700000002,E2,extra\n", "expected 3 fields, found 4",
     "u2,1700000002,E2,extra"),
    ("invalid-utf8", b"u2,1700000002,caf\xe9 cr\xe8me\n", "invalid UTF-8", ""),
    ("oversized-field", b"u2,1700000002," + b"z" * 70_000 + b"\n",
     "field of 70000 bytes (limit 65536)", ""),
    ("oversized-line", b"u2,1700000002," + b"z" * (1024 * 1024 + 10) + b"\n",
     "line longer than 1048576 bytes", ""),
]


@pytest.mark.parametrize(("bad", "reason", "content"), [c[1:] for c in BAD_ROWS],
                         ids=[c[0] for c in BAD_ROWS])
def test_bad_row_is_skipped_and_reported_beside_the_completed_file(
        s3: S3, services: Services, site: SiteConfig, bad: bytes, reason: str,
        content: str) -> None:
    # Given a file with a bad row between good rows
    bucket = site.import_bucket
    s3.put(bucket, "accounts.csv", HEADER + row(1) + bad + row(3) + row(4))
    # When the site is scanned
    result = scan(services, s3, site)
    # Then the good rows are imported, in order, and the bad one is not
    assert result.outcome == "done"
    assert result.files_failed == []
    assert result.files_completed == ["accounts.csv"]
    assert result.rows_imported == 3
    assert imported(s3, services) == [line(1), line(3), line(4)]
    # And the file moved to completed_imports/ with the bad-row report beside it
    done = f"completed_imports/{DAY}/accounts.csv"
    assert keys(s3, bucket) == [done, f"{done}.errors.csv"]
    assert s3.read_bytes(bucket, done) == HEADER + row(1) + bad + row(3) + row(4)
    # And the report lists exactly the bad row: record 2 on line 3, with its reason
    assert report_rows(s3, bucket, f"{done}.errors.csv") == [
        ["Record", "Line", "Reason", "Content"],
        ["2", "3", reason, content],
    ]


@pytest.mark.parametrize("bad", [
    pytest.param(b'u2,1700000002,"Signed "Up" today"\n', id="stray-quote-in-quoted-field"),
    pytest.param(b'u2,1700000002,"Signed Up\n', id="quote-never-closed"),
])
def test_malformed_quoting_is_a_reported_bad_row(
        s3: S3, services: Services, site: SiteConfig, bad: bytes) -> None:
    # Given a file whose last row has broken quoting, after two good rows
    bucket = site.import_bucket
    s3.put(bucket, "accounts.csv", HEADER + row(1) + row(3) + bad)
    # When the site is scanned
    result = scan(services, s3, site)
    # Then only the good rows are imported: the broken row is not turned into an event
    assert result.files_completed == ["accounts.csv"]
    assert imported(s3, services) == [line(1), line(3)]
    # And the report names the row as malformed CSV
    rows = report_rows(s3, bucket, f"completed_imports/{DAY}/accounts.csv.errors.csv")
    assert [r[:2] for r in rows] == [["Record", "Line"], ["3", "4"]]
    assert rows[1][2].startswith("malformed CSV: ")


def test_row_broken_by_a_carriage_return_is_reported_and_later_rows_import(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a row with a bare carriage return in an unquoted field, between good rows
    bucket = site.import_bucket
    s3.put(bucket, "accounts.csv", HEADER + row(1) + b"u2,1700000002,Sign\red Up\n" + row(3))
    # When scanned
    scan(services, s3, site)
    # Then the good rows import and the broken row is reported as malformed CSV
    assert imported(s3, services) == [line(1), line(3)]
    rows = report_rows(s3, bucket, f"completed_imports/{DAY}/accounts.csv.errors.csv")
    assert [r[:2] for r in rows[1:]] == [["2", "3"]]
    assert rows[1][2].startswith("malformed CSV: ")
    assert rows[1][3] == ""


def test_many_bad_rows_across_revisions_are_reported_in_file_order(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a file mixing good rows, a multi-line quoted row and bad rows of every kind,
    # imported two events per revision
    bucket = site.import_bucket
    body = (HEADER
            + row(1)                                    # record 1, line 2
            + b'u2,1700000002,"multi\nline"\n'          # record 2, lines 3-4
            + b",1700000003,E3\n"                       # record 3, line 5: no identity
            + b"\n"                                     # line 6: blank, not a record
            + row(4)                                    # record 4, line 7
            + b"u5,soon,E5\n"                           # record 5, line 8: bad timestamp
            + b"u6,1700000006,\xff\n"                   # record 6, line 9: invalid UTF-8
            + row(7)                                    # record 7, line 10
            + row(8)                                    # record 8, line 11
            + b"u9,1700000009\n")                       # record 9, line 12: wrong field count
    s3.put(bucket, "accounts.csv", body)
    # When scanned
    result = scan(services, s3, site, max_events_per_revision=2)
    # Then the good rows are imported in order over several revisions
    assert result.files_completed == ["accounts.csv"]
    assert imported(s3, services) == [line(1), {"_p": "u2", "_t": T0 + 2, "_n": "multi\nline"},
                                      line(4), line(7), line(8)]
    assert result.revisions == 3
    # And one report lists every bad row once, in file order, with record and line numbers
    rows = report_rows(s3, bucket, f"completed_imports/{DAY}/accounts.csv.errors.csv")
    assert rows == [
        ["Record", "Line", "Reason", "Content"],
        ["3", "5", "missing Identity", ",1700000003,E3"],
        ["5", "8", "Timestamp 'soon' is not whole Unix seconds", "u5,soon,E5"],
        ["6", "9", "invalid UTF-8", ""],
        ["9", "12", "expected 3 fields, found 2", "u9,1700000009"],
    ]


def test_bad_rows_of_a_file_imported_over_two_scans_are_reported_once(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a file with bad rows before and after the first checkpoint
    bucket = site.import_bucket
    s3.put(bucket, "accounts.csv", HEADER + row(1) + b",1,x\n" + row(3) + row(4) + b"u5,,E5\n"
           + row(6) + row(7))
    # When a first scan stops after its first revision and a second one finishes
    first = scan(services, s3, site, should_stop=stop_after_first_checkpoint(),
                 max_events_per_revision=2)
    assert (first.outcome, first.current_file, first.next_record) == (
        "interrupted", "accounts.csv", 4)
    second = scan(services, s3, site, max_events_per_revision=2)
    # Then every good row is imported once, in order
    assert second.files_completed == ["accounts.csv"]
    assert imported(s3, services) == [line(1), line(3), line(4), line(6), line(7)]
    # And the report lists both bad rows exactly once
    rows = report_rows(s3, bucket, f"completed_imports/{DAY}/accounts.csv.errors.csv")
    assert rows == [["Record", "Line", "Reason", "Content"],
                    ["2", "3", "missing Identity", ",1,x"],
                    ["5", "6", "missing Timestamp", "u5,,E5"]]


def test_file_of_only_bad_rows_completes_with_a_report_and_a_revision_without_events(
        s3: S3, services: Services, site: SiteConfig) -> None:
    bucket = site.import_bucket
    s3.put(bucket, "accounts.csv", HEADER + b",1,E\nu2,x,E\n")
    result = scan(services, s3, site)
    assert result.files_completed == ["accounts.csv"]
    # The bad rows are committed as a revision of no events that ends the file
    assert result.revisions == 1
    assert imported(s3, services) == []
    head = services.store.head("acme", 1)
    assert head is not None
    assert (head[0].events, head[0].rejected, head[0].file_end) == (0, 2, FileEnd.DONE)
    assert report_rows(s3, bucket, f"completed_imports/{DAY}/accounts.csv.errors.csv") == [
        ["Record", "Line", "Reason", "Content"],
        ["1", "2", "missing Identity", ",1,E"],
        ["2", "3", "Timestamp 'x' is not whole Unix seconds", "u2,x,E"],
    ]


def test_same_name_completed_twice_a_day_keeps_both_and_no_stale_report(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a file with a bad row, completed with its report
    bucket = site.import_bucket
    done = f"completed_imports/{DAY}/accounts.csv"
    s3.put(bucket, "accounts.csv", HEADER + row(1) + b",2,E2\n")
    scan(services, s3, site)
    assert report_rows(s3, bucket, f"{done}.errors.csv")[1:] == [["2", "3", "missing Identity",
                                                                  ",2,E2"]]
    # When a clean file of the same name is imported the same day
    etag = s3.put(bucket, "accounts.csv", good_file(3, 4))
    result = scan(services, s3, site)
    # Then the earlier file and its report stay; the clean one is completed beside them under
    # a name carrying its ETag, and no report beside it lists rows it lacks
    assert result.files_completed == ["accounts.csv"]
    second = f"completed_imports/{DAY}/accounts.{etag.strip(chr(34))[:8]}.csv"
    assert s3.read_bytes(bucket, second) == good_file(3, 4)
    assert s3.head(bucket, f"{second}.errors.csv") is None
    assert s3.read_bytes(bucket, done) == HEADER + row(1) + b",2,E2\n"
    assert s3.head(bucket, f"{done}.errors.csv") is not None


@pytest.mark.parametrize("same_content", [False, True], ids=["other-content", "same-content"])
def test_two_failures_of_one_name_in_one_day_keep_both_copies_and_reports(
        s3: S3, services: Services, site: SiteConfig, same_content: bool) -> None:
    # Given a bad file that failed today
    bucket = site.import_bucket
    first_body = b"u1,1700000001,E1\n"  # no header row
    s3.put(bucket, "accounts.csv", first_body)
    assert [k for k, _ in scan(services, s3, site).files_failed] == ["accounts.csv"]
    failed = f"failed_imports/{DAY}/accounts.csv"
    first_report = text(s3, bucket, f"{failed}.error.txt")
    # When the customer uploads a file of the same name that fails the same day (the same
    # bytes again, or others; an upload a second later, as S3 dates uploads to the second)
    time.sleep(1.1)
    second_body = first_body if same_content else b"User,Timestamp\nu,1\n"
    etag = s3.put(bucket, "accounts.csv", second_body).strip('"')[:8]
    assert [k for k, _ in scan(services, s3, site).files_failed] == ["accounts.csv"]
    # Then both copies and both reports are kept, each report naming its own copy
    second = f"failed_imports/{DAY}/accounts.{etag}.csv"
    assert keys(s3, bucket) == sorted([failed, f"{failed}.error.txt", second,
                                       f"{second}.error.txt"])
    assert s3.read_bytes(bucket, failed) == first_body
    assert s3.read_bytes(bucket, second) == second_body
    assert text(s3, bucket, f"{failed}.error.txt") == first_report
    assert f"The file was moved to s3://{bucket}/{second}\n" in \
        text(s3, bucket, f"{second}.error.txt")
    # And a third failure of the same bytes gets a third name
    time.sleep(1.1)
    s3.put(bucket, "accounts.csv", second_body)
    scan(services, s3, site)
    assert f"failed_imports/{DAY}/accounts.{etag}-2.csv" in keys(s3, bucket)
    assert len(keys(s3, bucket)) == 6


# -- bad files -----------------------------------------------------------------------------------


def png_bytes() -> bytes:
    return (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
            b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01"
            b"\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def ascii_binary_with_nuls() -> bytes:
    # An MP4-like start: plain ASCII letters between NUL bytes, then noise
    return b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2\n" + \
        random.Random(7).randbytes(1024)


def random_bytes() -> bytes:
    return random.Random(20240229).randbytes(4096)


def truncated_gzip(rows: int = 3000) -> bytes:
    whole = gzip.compress(good_file(*range(1, rows + 1)))
    return whole[: len(whole) // 2]


NO_HEADER_REASON = ("no header row: the first line ('u1,1700000001,E1') names none of the "
                    "columns Identity, Timestamp, Event, Alias, Prop:<Name>")

# (id, key, the file's bytes, the reason its report must give)
BAD_FILES = [
    ("data-as-first-line", "accounts-1.csv", b"u1,1700000001,E1\nu2,1700000002,E2\n",
     NO_HEADER_REASON),
    ("no-identity", "accounts-1.csv", b"User,Timestamp,Event\nu1,1700000001,E1\n",
     "header has no Identity column"),
    ("no-timestamp-no-alias", "accounts-1.csv", b"Identity,Event\nu1,E1\n",
     "header has no Timestamp column (only an alias file, with an Alias column, may leave it "
     "out)"),
    ("empty", "accounts-1.csv", b"", "file is empty: no header row"),
    ("blank-lines-only", "accounts-1.csv", b"\r\n\n\n", "file is empty: no header row"),
    ("png", "accounts-1.csv", png_bytes(),
     "not a CSV text file: the first line is not valid UTF-8"),
    ("random-bytes", "accounts-1.csv", random_bytes(),
     "not a CSV text file: the first line is not valid UTF-8"),
    ("ascii-with-nuls", "accounts-1.csv", ascii_binary_with_nuls(),
     "not a CSV text file: the first line contains binary data"),
    ("gz-not-gzip", "accounts-1.csv.gz", good_file(1, 2),
     "not a valid gzip file: Not a gzipped file (b'Id')"),
    ("gz-truncated", "accounts-1.csv.gz", truncated_gzip(),
     "not a valid gzip file: Compressed file ended before the end-of-stream marker was reached"),
    ("gz-of-png", "accounts-1.csv.gz", gzip.compress(png_bytes()),
     "not a CSV text file: the first line is not valid UTF-8"),
]


@pytest.mark.parametrize(("key", "body", "reason"), [c[1:] for c in BAD_FILES],
                         ids=[c[0] for c in BAD_FILES])
def test_bad_file_is_moved_aside_and_the_next_file_still_imports(
        s3: S3, services: Services, site: SiteConfig, key: str, body: bytes,
        reason: str) -> None:
    # Given a bad file and a good one that sorts after it
    bucket = site.import_bucket
    s3.put(bucket, key, body)
    s3.put(bucket, "accounts-2.csv", good_file(1, 2))
    # When the site is scanned
    result = scan(services, s3, site)
    # Then the bad file failed with its reason, and the good one was imported in the same scan
    assert result.outcome == "done"
    assert result.files_failed == [(key, reason)]
    assert result.last_error == f"{key}: {reason}"
    assert result.files_completed == ["accounts-2.csv"]
    assert imported(s3, services) == [line(1), line(2)]
    assert revision_sources(s3, services) == [("accounts-2.csv", 1, 2)]
    # And the bad file sits, unchanged, in failed_imports/ with a readable report beside it
    failed = f"failed_imports/{DAY}/{key}"
    assert keys(s3, bucket) == [f"completed_imports/{DAY}/accounts-2.csv", failed,
                                f"{failed}.error.txt"]
    assert s3.read_bytes(bucket, failed) == body
    report = text(s3, bucket, f"{failed}.error.txt")
    assert f"s3://{bucket}/{key}\n" in report
    assert "Site: acme\n" in report
    assert f"Reason: {reason}\n" in report
    assert "No record of this file was imported.\n" in report
    assert f"The file was moved to s3://{bucket}/{failed}\n" in report
    # And a further scan has nothing to do and fails nothing again
    again = scan(services, s3, site)
    assert (again.files_failed, again.files_completed, again.revisions) == ([], [], 0)


def test_scan_job_records_a_bad_file_in_the_site_status(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a file without a header row and a good file after it
    s3.put(site.import_bucket, "accounts-1.csv", b"u1,1700000001,E1\n")
    s3.put(site.import_bucket, "accounts-2.csv", good_file(1))
    # When the scan job runs
    outcome = ScanJob(services, importer(services))("acme")
    # Then the run finishes, and the site's status names the failed file and why
    assert outcome == "done"
    status = services.statuses.read("acme", "scan")
    assert status.outcome == "done"
    assert status.last_error == f"accounts-1.csv: {NO_HEADER_REASON}"
    assert status.details is not None
    assert status.details["files_failed"] == ["accounts-1.csv"]
    assert status.details["files_completed"] == ["accounts-2.csv"]


def test_header_only_file_is_not_bad_it_completes_without_a_revision(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a file with a header and no rows, and a good file after it
    bucket = site.import_bucket
    s3.put(bucket, "accounts-1.csv", b"\xef\xbb\xbfIdentity,Timestamp,Event\r\n")
    s3.put(bucket, "accounts-2.csv", good_file(1))
    # When scanned
    result = scan(services, s3, site)
    # Then both complete; only the good file made a revision, and there is no report
    assert result.files_failed == []
    assert result.files_completed == ["accounts-1.csv", "accounts-2.csv"]
    assert revision_sources(s3, services) == [("accounts-2.csv", 1, 1)]
    assert keys(s3, bucket) == [f"completed_imports/{DAY}/accounts-1.csv",
                                f"completed_imports/{DAY}/accounts-2.csv"]


def test_gzip_truncated_after_committed_revisions_fails_and_keeps_them(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a truncated gzip file long enough to commit revisions before its end (about 2 MiB
    # of rows before the damage, more than any read-ahead buffer)
    bucket = site.import_bucket
    s3.put(bucket, "accounts-1.csv.gz", truncated_gzip(rows=200_000))
    s3.put(bucket, "accounts-2.csv", good_file(1, prefix="v"))
    # When scanned with small revisions
    per_revision = 10_000
    result = scan(services, s3, site, max_events_per_revision=per_revision)
    # Then the file failed, the rows committed before the damage stay, and the next file imports
    reason = ("not a valid gzip file: Compressed file ended before the end-of-stream marker "
              "was reached")
    assert result.files_failed == [("accounts-1.csv.gz", reason)]
    assert result.files_completed == ["accounts-2.csv"]
    sources = revision_sources(s3, services)
    assert len(sources) >= 2, sources
    committed = sources[-2][2]
    revisions_of_file = committed // per_revision
    assert committed > 0 and committed % per_revision == 0
    # (the last revision of the file holds no events: it records that the file failed)
    assert sources == [("accounts-1.csv.gz", n * per_revision + 1, (n + 1) * per_revision)
                       for n in range(revisions_of_file)] + [
        ("accounts-1.csv.gz", committed + 1, committed), ("accounts-2.csv", 1, 1)]
    assert imported(s3, services) == [line(n) for n in range(1, committed + 1)] + \
        [line(1, prefix="v")]
    # And the report says how far the import got
    report = text(s3, bucket, f"failed_imports/{DAY}/accounts-1.csv.gz.error.txt")
    assert f"Reason: {reason}\n" in report
    assert (f"Records 1..{committed} were imported (revisions 1..{revisions_of_file}) before "
            "the failure.\n") in report
    # And a further scan does not fail it again
    again = scan(services, s3, site)
    assert (again.files_failed, again.revisions) == ([], 0)


# -- files that change or disappear mid-import ---------------------------------------------------


def start_import(s3: S3, services: Services, site: SiteConfig) -> None:
    """Import records 1..2 of accounts-1.csv (revision 1) and stop there."""
    s3.put(site.import_bucket, "accounts-1.csv", good_file(1, 2, 3, 4, 5, 6))
    first = scan(services, s3, site, should_stop=stop_after_first_checkpoint(),
                 max_events_per_revision=2)
    assert (first.outcome, first.current_file, first.next_record) == (
        "interrupted", "accounts-1.csv", 3)
    assert imported(s3, services) == [line(1), line(2)]


CHANGED_REASON = ("file changed while it was being imported (records 1..2 of the earlier "
                  "version were imported, up to revision 1)")


def test_file_changed_mid_import_fails_once_and_a_new_upload_imports_from_row_1(
        s3: S3, services: Services, site: SiteConfig) -> None:
    bucket = site.import_bucket
    # Given a file half imported, then overwritten with other content, and a later good file
    start_import(s3, services, site)
    changed = good_file(1, 2, 3, prefix="x")
    s3.put(bucket, "accounts-1.csv", changed)
    s3.put(bucket, "accounts-2.csv", good_file(1, prefix="v"))
    # When the site is scanned again
    second = scan(services, s3, site)
    # Then the changed file fails with a report saying it changed, and how far it got
    assert second.files_failed == [("accounts-1.csv", CHANGED_REASON)]
    failed = f"failed_imports/{DAY}/accounts-1.csv"
    assert s3.read_bytes(bucket, failed) == changed
    report = text(s3, bucket, f"{failed}.error.txt")
    assert f"Reason: {CHANGED_REASON}\n" in report
    assert "Records 1..2 were imported (revisions 1..1) before the failure.\n" in report
    # And the earlier revision stays, and the later file is imported after it
    assert second.files_completed == ["accounts-2.csv"]
    assert imported(s3, services) == [line(1), line(2), line(1, prefix="v")]
    # (between them, a revision without events records that accounts-1.csv failed)
    assert revision_sources(s3, services) == [("accounts-1.csv", 1, 2), ("accounts-1.csv", 3, 2),
                                              ("accounts-2.csv", 1, 1)]
    end = services.store.head("acme", 2)
    assert end is not None and (end[0].file_end, end[0].events) == (FileEnd.FAILED, 0)
    assert end[0].end_reason == CHANGED_REASON
    # When scanned once more, nothing fails again
    third = scan(services, s3, site)
    assert (third.files_failed, third.files_completed, third.revisions) == ([], [], 0)
    # When a new file is uploaded under the same key
    s3.put(bucket, "accounts-1.csv", good_file(1, 2, 3, prefix="w"))
    fourth = scan(services, s3, site)
    # Then it is imported normally, from its first row
    assert (fourth.files_failed, fourth.files_completed) == ([], ["accounts-1.csv"])
    assert imported(s3, services)[3:] == [line(1, prefix="w"), line(2, prefix="w"),
                                          line(3, prefix="w")]
    assert revision_sources(s3, services)[3:] == [("accounts-1.csv", 1, 3)]
    assert keys(s3, bucket) == [f"completed_imports/{DAY}/accounts-1.csv",
                                f"completed_imports/{DAY}/accounts-2.csv",
                                failed, f"{failed}.error.txt"]


def test_changed_file_with_nothing_after_it_then_a_new_upload(
        s3: S3, services: Services, site: SiteConfig) -> None:
    bucket = site.import_bucket
    # Given a file half imported, then overwritten, and no other file
    start_import(s3, services, site)
    s3.put(bucket, "accounts-1.csv", good_file(9, prefix="x"))
    # When scanned twice
    second = scan(services, s3, site)
    third = scan(services, s3, site)
    # Then it fails once, and the newest revision is still the half-imported file's
    assert second.files_failed == [("accounts-1.csv", CHANGED_REASON)]
    assert (third.files_failed, third.files_completed) == ([], [])
    # When a new file is uploaded under the same key
    s3.put(bucket, "accounts-1.csv", good_file(1, 2, prefix="w"))
    fourth = scan(services, s3, site)
    # Then it is imported from its first row, not resumed at record 3
    assert (fourth.files_failed, fourth.files_completed) == ([], ["accounts-1.csv"])
    assert imported(s3, services) == [line(1), line(2), line(1, prefix="w"),
                                      line(2, prefix="w")]
    assert revision_sources(s3, services) == [("accounts-1.csv", 1, 2), ("accounts-1.csv", 3, 2),
                                              ("accounts-1.csv", 1, 2)]


class _Killed(BaseException):
    """Stands for the process dying: nothing in bucketbridge catches it."""


class _DiesAt(S3):
    """The customer's bucket, reached by a process that dies at one step of a failure."""

    def __init__(self, s3: S3, step: str) -> None:
        super().__init__(s3.client)
        self.step = step

    def put(self, bucket: str, key: str, *args: object, **kwargs: object) -> str:
        if self.step == "report" and key.endswith(".error.txt"):
            raise _Killed
        return super().put(bucket, key, *args, **kwargs)  # type: ignore[arg-type]

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str,
             **kwargs: object) -> None:
        if self.step == "copy" and dst_key.startswith(FAILED_PREFIX):
            raise _Killed
        super().copy(src_bucket, src_key, dst_bucket, dst_key, **kwargs)  # type: ignore[arg-type]

    def delete(self, bucket: str, key: str) -> None:
        if self.step == "delete" and key == "accounts-1.csv":
            raise _Killed
        super().delete(bucket, key)


@pytest.mark.parametrize("step", ["report", "copy", "delete"])
def test_a_failure_cut_short_by_a_crash_is_finished_by_the_next_scan(
        s3: S3, services: Services, site: SiteConfig, step: str) -> None:
    bucket = site.import_bucket
    # Given a file half imported, then replaced
    start_import(s3, services, site)
    changed = good_file(1, 2, 3, prefix="x")
    s3.put(bucket, "accounts-1.csv", changed)
    # When the scan that fails it dies after recording the failure, at one step of the move
    with pytest.raises(_Killed):
        importer(services).scan(site, _DiesAt(s3, step), budget_s=30)
    end = services.store.head("acme", 2)
    assert end is not None and end[0].file_end is FileEnd.FAILED
    # And the site is scanned again
    again = scan(services, s3, site)
    # Then the failure is finished once: the file moved with its report, nothing imported
    assert again.files_failed == [("accounts-1.csv", CHANGED_REASON)]
    assert again.revisions == 0
    failed = f"failed_imports/{DAY}/accounts-1.csv"
    assert s3.read_bytes(bucket, failed) == changed
    assert f"Reason: {CHANGED_REASON}\n" in text(s3, bucket, f"{failed}.error.txt")
    assert keys(s3, bucket) == [failed, f"{failed}.error.txt"]
    assert imported(s3, services) == [line(1), line(2)]
    # And a further scan leaves it alone
    assert scan(services, s3, site).files_failed == []


DELETED_REASON = ("file was deleted before its import finished (records 1..2 were imported, "
                  "up to revision 1)")


def test_file_deleted_mid_import_is_reported_once(
        s3: S3, services: Services, site: SiteConfig) -> None:
    bucket = site.import_bucket
    # Given a file half imported, then deleted, and a later good file
    start_import(s3, services, site)
    s3.delete(bucket, "accounts-1.csv")
    s3.put(bucket, "accounts-2.csv", good_file(1, prefix="v"))
    # When the site is scanned
    second = scan(services, s3, site)
    # Then the deletion is reported, with a report under failed_imports/
    assert second.files_failed == [("accounts-1.csv", DELETED_REASON)]
    report = text(s3, bucket, f"failed_imports/{DAY}/accounts-1.csv.error.txt")
    assert f"s3://{bucket}/accounts-1.csv\n" in report
    assert f"Reason: {DELETED_REASON}\n" in report
    # And the earlier revision stays, and the later file imports
    assert second.files_completed == ["accounts-2.csv"]
    assert imported(s3, services) == [line(1), line(2), line(1, prefix="v")]
    assert keys(s3, bucket) == [f"completed_imports/{DAY}/accounts-2.csv",
                                f"failed_imports/{DAY}/accounts-1.csv.error.txt"]
    # And later scans do not report it again
    for _ in range(2):
        again = scan(services, s3, site)
        assert (again.files_failed, again.files_completed, again.revisions) == ([], [], 0)


def test_file_deleted_mid_import_with_nothing_after_it_is_reported_once(
        s3: S3, services: Services, site: SiteConfig) -> None:
    bucket = site.import_bucket
    # Given a file half imported, then deleted, and no other file
    start_import(s3, services, site)
    s3.delete(bucket, "accounts-1.csv")
    # When scanned three times
    results = [scan(services, s3, site) for _ in range(3)]
    # Then only the first scan reports it
    assert [r.files_failed for r in results] == [[("accounts-1.csv", DELETED_REASON)], [], []]
    assert keys(s3, bucket) == [f"failed_imports/{DAY}/accounts-1.csv.error.txt"]
    # When a file is uploaded again under the same key
    s3.put(bucket, "accounts-1.csv", good_file(7, prefix="w"))
    after = scan(services, s3, site)
    # Then it is imported from its first row
    assert (after.files_failed, after.files_completed) == ([], ["accounts-1.csv"])
    assert imported(s3, services) == [line(1), line(2), line(7, prefix="w")]


# -- bad buckets ---------------------------------------------------------------------------------


def missing_bucket_site(services: Services) -> SiteConfig:
    config = SiteConfig(site_id="acme", import_bucket=f"missing-{uuid.uuid4().hex[:12]}",
                        base_filename="accounts.csv")
    services.sites.create(config)
    return config


def test_missing_bucket_raises_bucket_missing(s3: S3, services: Services) -> None:
    # Given a site whose import bucket does not exist
    site = missing_bucket_site(services)
    # When scanned
    with pytest.raises(BucketMissing) as raised:
        scan(services, s3, site)
    # Then the error names the bucket, and nothing was written
    assert str(raised.value) == f"bucket {site.import_bucket} does not exist"
    assert imported(s3, services) == []


def test_missing_bucket_is_recorded_by_the_scan_job_and_retried_next_time(
        s3: S3, services: Services) -> None:
    # Given a site whose import bucket does not exist
    site = missing_bucket_site(services)
    job = ScanJob(services, importer(services))
    # When the scan job runs
    outcome = job("acme")
    # Then it reports a bucket error in the site's status, without crashing
    assert outcome == "bucket_error"
    status = services.statuses.read("acme", "scan")
    assert status.outcome == "error"
    assert status.last_error == f"bucket {site.import_bucket} does not exist"
    assert status.last_error_at is not None
    # When the bucket and a file appear, the next run imports
    s3.create_bucket(site.import_bucket)
    s3.put(site.import_bucket, "accounts.csv", good_file(1, 2))
    assert job("acme") == "done"
    assert imported(s3, services) == [line(1), line(2)]
    status = services.statuses.read("acme", "scan")
    assert status.outcome == "done"
    assert status.details is not None
    assert status.details["files_completed"] == ["accounts.csv"]


# Access denied, for real: moto checks IAM policies while its auth is switched on.


def set_moto_auth(endpoint: str, free_requests: str) -> str:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", method="POST",
                                     data=free_requests.encode(),
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])


@pytest.fixture
def moto_auth(s3_endpoint: str) -> Iterator[Callable[[bool], None]]:
    """Switch moto's IAM checks on or off; always off again after the test."""
    previous = set_moto_auth(s3_endpoint, "inf")

    def switch(on: bool) -> None:
        set_moto_auth(s3_endpoint, "0" if on else "inf")

    try:
        yield switch
    finally:
        set_moto_auth(s3_endpoint, previous)


def s3_policy(deny_bucket: str | None) -> str:
    statements: list[dict[str, object]] = [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]
    if deny_bucket:
        statements.append({"Effect": "Deny", "Action": "s3:*",
                           "Resource": [f"arn:aws:s3:::{deny_bucket}",
                                        f"arn:aws:s3:::{deny_bucket}/*"]})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@pytest.fixture
def denied_services(s3_endpoint: str, settings: Settings, redis_client: redis.Redis,
                    import_bucket: str) -> Iterator[tuple[Services, Callable[[bool], None]]]:
    """Services whose fleet credentials may use the store bucket but not ``import_bucket``;
    the callable allows or denies that bucket again."""
    iam = boto3.client("iam", endpoint_url=s3_endpoint, region_name="us-east-1")
    user = f"fleet-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=s3_policy(import_bucket))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    fleet = S3(make_client(s3_endpoint, credentials=RoleCredentials(
        access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"],
        session_token="", expires_at_s=0)))

    def deny(denied: bool) -> None:
        iam.put_user_policy(UserName=user, PolicyName="s3",
                            PolicyDocument=s3_policy(import_bucket if denied else None))

    yield Services.build(settings, clock=SystemClock(), metrics=Metrics(),
                         redis_client=redis_client, s3=fleet), deny
    iam.close()


def test_denied_bucket_raises_access_denied_and_scan_job_records_it(
        s3: S3, services: Services, site: SiteConfig,
        denied_services: tuple[Services, Callable[[bool], None]],
        moto_auth: Callable[[bool], None]) -> None:
    # Given a site with a file, in a bucket the fleet's credentials may not use
    fleet_services, deny = denied_services
    fleet = fleet_services.store_s3
    s3.put(site.import_bucket, "accounts.csv", good_file(1, 2))
    moto_auth(True)
    # When it is scanned
    with pytest.raises(AccessDenied) as raised:
        importer(fleet_services).scan(site, fleet, budget_s=30)
    # Then the scan says access was denied
    assert str(raised.value) == f"access denied to s3://{site.import_bucket}/accounts " \
                                "(AccessDenied)"
    # When the scan job runs
    job = ScanJob(fleet_services, importer(fleet_services))
    assert job("acme") == "bucket_error"
    # Then the site's status holds the error and nothing was imported
    status = fleet_services.statuses.read("acme", "scan")
    assert status.outcome == "error"
    assert status.last_error == str(raised.value)
    assert list(fleet_services.store.objects("acme")) == []
    # When access is granted, the next run imports the file
    moto_auth(False)
    deny(False)
    moto_auth(True)
    assert job("acme") == "done"
    moto_auth(False)
    assert imported(s3, services) == [line(1), line(2)]
    assert keys(s3, site.import_bucket) == [f"completed_imports/{DAY}/accounts.csv"]
