"""The scan and export jobs: leases, faults recorded in the status, follow-ups, refreshes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shared.exports.exporter import Exporter
from shared.fleet.leases import Lease
from shared.formats.times import iso_utc
from shared.imports.scan import Importer
from shared.services import Services
from shared.store.ledger import ExportLedger
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.shared.exports.test_exporter import write_revision
from workers.jobs.export import ExportJob
from workers.jobs.scan import ScanJob

pytestmark = pytest.mark.timeout(60)


def sample(services: Services, name: str, **labels: str) -> float:
    value = services.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def export_job(services: Services, sent: list[Any]) -> ExportJob:
    exporter = Exporter(services.store, ExportLedger(services.store_s3,
                                                     services.settings.store_bucket),
                        services.tail_cache, services.clock, services.metrics)
    return ExportJob(services, exporter, sent.append)


def scan_job(services: Services, sent: list[Any]) -> ScanJob:
    importer = Importer(services.store, services.reports, services.tail_cache,
                        services.clock, services.metrics)
    return ScanJob(services, importer, sent.append)


def test_missing_export_bucket_is_reported_and_nothing_is_marked_exported(
        services: Services, s3: S3, site: SiteConfig) -> None:
    # Given a revision to export and an export bucket that was deleted
    write_revision(services.store, "acme", 1, services.clock.now_s() - 2 * 86400,
                   [1700000000])
    s3.client.delete_bucket(Bucket=site.export_bucket or "")
    job = export_job(services, [])
    # When the export runs
    outcome = job("acme")
    # Then the status says so, the metric counts it, and the ledger did not move
    assert outcome == "bucket_error"
    status = services.statuses.read("acme", "export")
    assert status.last_error and site.export_bucket in status.last_error
    assert sample(services, "bucketbridge_export_failures_total",
                  reason="BucketMissing") == 1
    summary = {s.site: s for s in services.fleet_status.read_all()}["acme"].job("export")
    assert (summary.outcome, summary.problem) == ("error", "error")
    assert ExportLedger(s3, services.settings.store_bucket).load("acme").position == 0
    # And once the bucket is back the next cycle exports
    s3.create_bucket(site.export_bucket or "")
    assert job("acme") == "done"
    assert s3.head(site.export_bucket or "", "revisions/1.json") is not None


def test_export_that_hits_its_budget_queues_its_continuation(
        services: Services, site: SiteConfig) -> None:
    for n in (1, 2, 3):
        write_revision(services.store, "acme", n, services.clock.now_s() - 2 * 86400,
                       [1700000000 + n])
    sent: list[Any] = []
    job = export_job(services, sent)
    job.shutdown_requested = lambda: True  # stops at the first checkpoint
    assert job("acme") == "interrupted"
    assert [(m.actor_name, m.args, m.kwargs) for m in sent] == [("export", ("acme",), {})]
    assert sample(services, "bucketbridge_budget_exhausted_total", job_kind="export") == 0


def test_scan_stopped_by_a_shutdown_is_interrupted_not_budget_and_continues(
        services: Services, s3: S3, site: SiteConfig) -> None:
    # Given a file to import, and a worker that is shutting down
    s3.put(site.import_bucket, "accounts.csv", b"Identity,Timestamp,Event\na,1700000000,E\n")
    sent: list[Any] = []
    job = scan_job(services, sent)
    job.shutdown_requested = lambda: True
    # When the scan runs
    outcome = job("acme")
    # Then it is "interrupted", not counted as a budget exhaustion, recorded as such, and its
    # continuation is queued (after the lease was released: the next worker can take it)
    assert outcome == "interrupted"
    assert sample(services, "bucketbridge_budget_exhausted_total", job_kind="scan") == 0
    assert sample(services, "bucketbridge_job_duration_seconds_count", job_kind="scan",
                  outcome="interrupted") == 1
    assert services.statuses.read("acme", "scan").outcome == "interrupted"
    assert [(m.actor_name, m.args, m.kwargs) for m in sent] == [("scan", ("acme",), {})]
    assert services.redis.get("bucketbridge:lease:import:acme") is None


def test_busy_export_lease_acks_without_work(services: Services, site: SiteConfig) -> None:
    holder = Lease(services.redis, "export", "acme")
    assert holder.acquire()
    try:
        assert export_job(services, [])("acme") == "busy"
        assert sample(services, "bucketbridge_lease_busy_total", job_kind="export") == 1
        summary = {s.site: s for s in services.fleet_status.read_all()}["acme"].job("export")
        assert (summary.outcome, summary.problem) == ("busy", "busy")
    finally:
        holder.release()


def test_import_and_export_of_one_site_hold_separate_leases(
        services: Services, s3: S3, site: SiteConfig) -> None:
    s3.put(site.import_bucket, "accounts.csv", b"Identity,Timestamp,Event\na,1700000000,E\n")
    export_holder = Lease(services.redis, "export", "acme")
    assert export_holder.acquire()
    try:
        assert scan_job(services, [])("acme") == "done"
    finally:
        export_holder.release()


def test_scan_that_writes_revisions_asks_for_a_status_refresh(
        services: Services, s3: S3, site: SiteConfig) -> None:
    s3.put(site.import_bucket, "accounts.csv", b"Identity,Timestamp,Event\na,1700000000,E\n")
    sent: list[Any] = []
    assert scan_job(services, sent)("acme") == "done"
    assert [(m.actor_name, m.kwargs) for m in sent] == [("export", {"status_only": True})]
    # And the refresh brings Total Revisions up to date without exporting anything
    assert export_job(services, [])("acme", status_only=True) == "status"
    status = s3.read_bytes(site.export_bucket or "", "status.csv").decode().splitlines()
    assert status[1].startswith("1,0,")


def test_scan_of_missing_import_bucket_records_the_error(
        services: Services, s3: S3, site: SiteConfig) -> None:
    s3.client.delete_bucket(Bucket=site.import_bucket)
    assert scan_job(services, [])("acme") == "bucket_error"
    status = services.statuses.read("acme", "scan")
    assert status.last_error and "does not exist" in status.last_error
    assert status.last_error_at is not None and status.last_error_at <= iso_utc(
        services.clock.now_s())


def test_a_scan_whose_budget_ran_out_before_any_progress_does_not_continue(
        services: Services, s3: S3, site: SiteConfig) -> None:
    s3.put(site.import_bucket, "accounts.csv", b"Identity,Timestamp,Event\na,1700000000,E\n")
    services.settings = replace(services.settings, import_budget_s=0)
    sent: list[Any] = []
    assert scan_job(services, sent)("acme") == "budget"
    assert [m.actor_name for m in sent] == []  # the next slot tries again: no busy loop


def test_paused_site_is_skipped(services: Services, site: SiteConfig) -> None:
    services.sites.set_paused("acme", True)
    assert scan_job(services, [])("acme") == "paused"
    assert export_job(services, [])("acme") == "paused"


def test_a_message_sent_even_if_paused_runs_for_a_paused_site(
        services: Services, s3: S3, site: SiteConfig) -> None:
    s3.put(site.import_bucket, "accounts.csv", b"Identity,Timestamp,Event\na,1700000000,E\n")
    services.sites.set_paused("acme", True)
    assert scan_job(services, [])("acme", even_if_paused=True) == "done"
    assert services.store.latest_number("acme") == 1


def test_unknown_site_is_acked(services: Services) -> None:
    assert scan_job(services, [])("nosuch") == "unknown_site"
    assert export_job(services, [])("nosuch") == "unknown_site"
