"""The ``scan`` actor's work: one bounded import run for one site, under its import lease."""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared.clock import iso_utc
from shared.errors import BucketError, RetryableError, SiteNotFound
from shared.importer import Importer, ScanResult
from shared.lease import Lease
from shared.revisions import RevisionExists
from shared.services import Services
from shared.status import JobStatus

logger = logging.getLogger(__name__)

JOB = "scan"
LEASE_JOB = "import"


class ScanJob:
    def __init__(self, services: Services, importer: Importer,
                 shutdown_requested: Callable[[], bool] = lambda: False,
                 lease_ttl_s: float = 30.0) -> None:
        self.services = services
        self.importer = importer
        self.shutdown_requested = shutdown_requested
        self.lease_ttl_s = lease_ttl_s

    def __call__(self, site_id: str) -> str:
        """Run one scan; returns the outcome (``done``, ``budget``, ``busy``, ``paused``, …)."""
        svc = self.services
        started = svc.clock.monotonic_s()
        outcome = "error"
        try:
            outcome = self._run(site_id)
            return outcome
        finally:
            svc.metrics.job_duration.labels(JOB, outcome).observe(
                svc.clock.monotonic_s() - started)

    def _run(self, site_id: str) -> str:
        svc = self.services
        try:
            site = svc.sites.get(site_id)
        except SiteNotFound:
            logger.warning("site=%s scan for an unknown site ignored", site_id)
            svc.metrics.job_errors.labels(JOB, "SiteNotFound").inc()
            return "unknown_site"
        if site.paused:
            logger.info("site=%s paused; scan skipped", site_id)
            return "paused"
        lease = Lease(svc.redis, LEASE_JOB, site_id, ttl_s=self.lease_ttl_s)
        if not lease.acquire():
            logger.info("site=%s import lease busy; scan acked without work", site_id)
            svc.metrics.lease_busy.labels(JOB, site_id).inc()
            return "busy"
        with lease:
            try:
                s3 = svc.access.for_site(site)
                result = self.importer.scan(
                    site, s3, svc.settings.import_budget_s,
                    should_stop=lambda: lease.lost or self.shutdown_requested())
            except BucketError as exc:
                logger.error("site=%s import bucket problem: %s", site_id, exc)
                svc.metrics.job_errors.labels(JOB, type(exc).__name__).inc()
                self._report(site_id, "error", None, str(exc))
                return "bucket_error"
            except RevisionExists as exc:
                logger.warning("site=%s another writer got ahead: %s", site_id, exc)
                svc.metrics.job_errors.labels(JOB, "RevisionExists").inc()
                return "lost_race"
            except RetryableError as exc:
                svc.metrics.job_errors.labels(JOB, type(exc).__name__).inc()
                self._report(site_id, "retrying", None, str(exc))
                raise
        self._report(site_id, result.outcome, result, result.last_error)
        logger.info("site=%s scan %s: %d rows, %d revisions, %d files done, %d failed, "
                    "%d waiting", site_id, result.outcome, result.rows_imported, result.revisions,
                    len(result.files_completed), len(result.files_failed), result.backlog_files)
        return result.outcome

    def _report(self, site_id: str, outcome: str, result: ScanResult | None,
                error: str | None) -> None:
        try:
            self._write_status(site_id, outcome, result, error)
        except RetryableError as exc:
            logger.warning("site=%s could not record the scan status: %s", site_id, exc)

    def _write_status(self, site_id: str, outcome: str, result: ScanResult | None,
                      error: str | None) -> None:
        svc = self.services
        now = iso_utc(svc.clock.now_s())
        previous = svc.statuses.read(site_id, JOB)
        details = None
        if result is not None:
            details = {"current_file": result.current_file, "next_record": result.next_record,
                       "files_completed": result.files_completed,
                       "files_failed": [k for k, _ in result.files_failed],
                       "rows_imported": result.rows_imported, "revisions": result.revisions,
                       "backlog_files": result.backlog_files,
                       "backlog_bytes": result.backlog_bytes}
        svc.statuses.write(site_id, JobStatus(
            job=JOB, finished_at=now, outcome=outcome,
            last_error=error if error else previous.last_error,
            last_error_at=now if error else previous.last_error_at,
            details=details if details is not None else previous.details))
