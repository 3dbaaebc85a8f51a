"""An idle site is cheap: a scan that finds no file and an export with nothing new each cost a
few S3 requests (counted at moto's server), write nothing to the customer's bucket nor any
status, and take a few milliseconds of the worker's CPU."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest

from shared.services import Services
from shared.store.sites import SiteConfig
from tests.counting import s3_requests
from tests.shared.exports.test_exporter import write_revision
from tests.workers.jobs.test_jobs import export_job, scan_job

pytestmark = pytest.mark.timeout(60)

MAX_REQUESTS = 3
MAX_CPU_S = 0.020
RUNS = 10


def cpu_s(call: Callable[[], object]) -> float:
    """CPU time of this thread (the worker's), not of moto's server threads."""
    started = time.thread_time()
    call()
    return time.thread_time() - started


def assert_idle_runs(services: Services, run: Callable[[], object], every_s: float,
                     *buckets: str) -> None:
    """``run`` RUNS times, ``every_s`` apart: each within MAX_REQUESTS requests to ``buckets``,
    none a write, and a median CPU time within MAX_CPU_S."""
    cpu: list[float] = []
    for _ in range(RUNS):
        services.clock.advance(every_s)
        with s3_requests(*buckets) as log:
            cpu.append(cpu_s(run))
        assert len(log) <= MAX_REQUESTS, log.requests
        assert log.writes() == []
    assert statistics.median(cpu) <= MAX_CPU_S, cpu


def test_an_idle_scan_costs_at_most_three_requests_and_writes_nothing(
        services: Services, site: SiteConfig) -> None:
    # Given a site whose import location is empty, scanned once already
    scan = scan_job(services, [])
    assert scan("acme") == "done"
    # When its next scans run, then each costs at most three requests and writes nothing
    assert_idle_runs(services, lambda: scan("acme"), 3600,
                     services.settings.store_bucket, site.import_bucket)


def test_an_export_with_nothing_new_costs_at_most_three_requests_and_writes_nothing(
        services: Services, site: SiteConfig) -> None:
    # Given a site whose one revision was exported
    write_revision(services.store, "acme", 1, services.clock.now_s() - 2 * 86400, [1700000000])
    export = export_job(services, [])
    assert export("acme") == "done"
    assert export("acme") == "done"  # its status now says "nothing copied"
    # When its next export cycles find nothing new, then each costs at most three requests:
    # nothing is written, neither index.csv nor status.csv in the customer's bucket, nor the
    # site's status in the store
    assert_idle_runs(services, lambda: export("acme"), 7200,
                     services.settings.store_bucket, site.export_bucket or "")
    # And the customer's files are still there, as the last change left them
    s3 = services.store_s3
    status = s3.read_bytes(site.export_bucket or "", "status.csv").splitlines()[1]
    assert status == b"1,1,1700000000,2023-11-14T22:13:20Z"


def test_an_export_writes_the_status_file_again_once_something_changed(
        services: Services, site: SiteConfig) -> None:
    # Given an idle exported site
    write_revision(services.store, "acme", 1, services.clock.now_s() - 2 * 86400, [1700000000])
    export = export_job(services, [])
    assert export("acme") == "done"
    # When a new revision is written and exported
    write_revision(services.store, "acme", 2, services.clock.now_s() - 86400, [1700000100])
    assert export("acme") == "done"
    # Then index.csv and status.csv follow
    s3 = services.store_s3
    status = s3.read_bytes(site.export_bucket or "", "status.csv").splitlines()[1]
    assert status.startswith(b"2,2,1700000100")
    assert b"revisions/2.json" in s3.read_bytes(site.export_bucket or "", "index.csv")
