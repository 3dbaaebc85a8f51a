"""A run is bounded whatever its file holds, and commits what it read: stretches without a valid
row (blank lines, bad rows) still move the position; files past the line or size limit are
failed with that reason and the site's later files import.  Through the real scan against
moto's S3 server."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import pytest

from shared.clock import FrozenClock
from shared.formats.csvrecords import CHECK_EVERY_BYTES, ReadLimits
from shared.imports.scan import Importer, ScanResult
from shared.services import Services
from shared.store.revisionwriter import Limits
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.shared.imports.test_bad_inputs import (
    DAY,
    HEADER,
    NOW_S,
    good_file,
    imported,
    line,
    report_rows,
    row,
    stop_after_first_checkpoint,
    text,
)

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024


def scan(services: Services, s3: S3, site: SiteConfig,
         should_stop: Callable[[], bool] = lambda: False, limits: Limits | None = None,
         read_limits: ReadLimits | None = None) -> ScanResult:
    importer = Importer(services.store, services.reports, services.tail_cache,
                        FrozenClock(NOW_S), services.metrics, limits, read_limits)
    return importer.scan(site, s3, budget_s=30, should_stop=should_stop)


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_stretch_of_blank_lines_commits_its_position_without_events(
        s3: S3, services: Services, site: SiteConfig, gzipped: bool) -> None:
    # Given a file with 6 MiB of blank lines between two rows
    body = HEADER + row(1) + b"\n" * (6 * MiB) + row(2)
    name = "accounts.csv.gz" if gzipped else "accounts.csv"
    s3.put(site.import_bucket, name, gzip.compress(body) if gzipped else body)
    # When the run's budget runs out within the blank lines
    first = scan(services, s3, site, should_stop=stop_after_first_checkpoint())
    # Then it stopped there, having committed a revision that moves the position
    assert first.outcome == "interrupted"
    assert first.revisions == 1
    head = services.store.head("acme", 1)
    assert head is not None
    meta = head[0]
    assert (meta.events, meta.rejected, meta.record_end) == (1, 0, 1)
    assert CHECK_EVERY_BYTES <= meta.byte_end < 2 * CHECK_EVERY_BYTES
    # And a second run stopped the same way moves it again, without events or rejects
    second = scan(services, s3, site, should_stop=stop_after_first_checkpoint())
    assert second.outcome == "interrupted"
    head = services.store.head("acme", 2)
    assert head is not None
    assert (head[0].events, head[0].rejected, head[0].record_start, head[0].record_end) == (
        0, 0, 2, 1)
    assert head[0].byte_start == meta.byte_end < head[0].byte_end
    # And a run without a stop finishes the file: every row once, in order
    last = scan(services, s3, site)
    assert last.files_completed == [name]
    assert imported(s3, services) == [line(1), line(2)]


def test_a_file_of_only_bad_rows_commits_them_in_chunks_and_reports_them_all(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a file of 25 bad rows (millisecond timestamps), rejects held 10 at a time
    bad = b"".join(f"u{n},{1_700_000_000_000 + n},E\n".encode() for n in range(1, 26))
    s3.put(site.import_bucket, "accounts-1.csv", HEADER + bad)
    s3.put(site.import_bucket, "accounts-2.csv", good_file(1))
    # When scanned
    result = scan(services, s3, site, limits=Limits(max_rejects_per_revision=10))
    # Then the bad rows were committed in revisions of at most 10, without events
    metas = []
    for n in range(1, result.revisions + 1):
        head = services.store.head("acme", n)
        assert head is not None
        metas.append(head[0])
    assert [(m.events, m.rejected) for m in metas] == [(0, 10), (0, 10), (0, 5), (1, 0)]
    # And the file completed with every bad row in its report, in order; the next file imported
    assert result.files_completed == ["accounts-1.csv", "accounts-2.csv"]
    rows = report_rows(s3, site.import_bucket,
                       f"completed_imports/{DAY}/accounts-1.csv.errors.csv")
    assert [r[0] for r in rows[1:]] == [str(n) for n in range(1, 26)]
    assert rows[1][2] == "Timestamp 1700000000001 is out of range (milliseconds?)"
    assert imported(s3, services) == [line(1)]


@pytest.mark.parametrize(("body", "limits", "reason"), [
    (HEADER + row(1) + b"x" * (3 * MiB), ReadLimits(max_line_bytes=2 * MiB),
     f"line 3 is longer than the limit of {2 * MiB} bytes"),
    (HEADER + row(1) * (200_000), ReadLimits(max_file_bytes=2 * MiB),
     f"file is larger than the limit of {2 * MiB} bytes (decompressed)"),
    (b"\n" * (4 * MiB) + HEADER + row(1), ReadLimits(),
     f"no header row in the first {2 * MiB} bytes"),
], ids=["endless-line", "too-large", "no-header"])
def test_a_file_past_a_limit_is_failed_with_that_reason_and_later_files_import(
        s3: S3, services: Services, site: SiteConfig, body: bytes, limits: ReadLimits,
        reason: str) -> None:
    # Given a gzip file past a limit, and a good file after it
    s3.put(site.import_bucket, "accounts-1.csv.gz", gzip.compress(body))
    s3.put(site.import_bucket, "accounts-2.csv", good_file(7))
    # When scanned
    result = scan(services, s3, site, read_limits=limits)
    # Then the file failed with that reason, its report says so, and the next file imported
    assert result.files_failed == [("accounts-1.csv.gz", reason)]
    assert result.files_completed == ["accounts-2.csv"]
    report = text(s3, site.import_bucket, f"failed_imports/{DAY}/accounts-1.csv.gz.error.txt")
    assert f"Reason: {reason}\n" in report
    assert imported(s3, services)[-1] == line(7)
