"""The ``scan`` actor's work: one bounded import run for one site, under its import lease."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.errors import DramatiqError
from redis.exceptions import RedisError

from shared.errors import BucketError, RetryableError
from shared.fleet.leases import IMPORT_LEASE
from shared.fleet.messages import export_message
from shared.imports.scan import Importer, ScanResult
from shared.services import Services
from shared.store.revisions import RevisionExists
from shared.store.sites import SiteConfig
from workers.job import LeasedJob

logger = logging.getLogger(__name__)

# status.csv's "Total Revisions" must follow new revisions within minutes, not export cycles.
STATUS_REFRESH_EVERY_S = 60.0


class ScanJob(LeasedJob):
    job = "scan"
    lease_job = IMPORT_LEASE

    def __init__(self, services: Services, importer: Importer,
                 enqueue: Callable[[dramatiq.Message[Any]], Any] = lambda _m: None,
                 shutdown_requested: Callable[[], bool] = lambda: False,
                 lease_ttl_s: float = 30.0) -> None:
        super().__init__(services, shutdown_requested, lease_ttl_s)
        self.importer = importer
        self.enqueue = enqueue

    def __call__(self, site_id: str) -> str:
        """Run one scan; returns the outcome (``done``, ``budget``, ``busy``, ``paused``, …)."""
        return self.timed(lambda: self._run(site_id))

    def _run(self, site_id: str) -> str:
        svc = self.services
        site = self.load_site(site_id)
        if site is None:
            return "unknown_site"
        if site.paused:
            logger.info("site=%s paused; scan skipped", site_id)
            return "paused"
        lease = self.take_lease(site_id)
        if lease is None:
            return "busy"
        refresh = _StatusRefresh(site, self.enqueue, svc.clock.monotonic_s)
        with lease:
            try:
                result = self.importer.scan(site, svc.access.for_site(site),
                                            svc.settings.import_budget_s,
                                            should_stop=self.stopper(lease),
                                            on_revision=refresh.revision_written)
            except BucketError as exc:
                logger.error("site=%s import bucket problem: %s", site_id, exc)
                svc.metrics.job_errors.labels(self.job, type(exc).__name__).inc()
                self.report(site_id, "error", None, str(exc))
                return "bucket_error"
            except RevisionExists as exc:
                logger.warning("site=%s another writer got ahead: %s", site_id, exc)
                svc.metrics.job_errors.labels(self.job, "RevisionExists").inc()
                return "lost_race"
            except RetryableError as exc:
                svc.metrics.job_errors.labels(self.job, type(exc).__name__).inc()
                self.report(site_id, "retrying", None, str(exc))
                raise
            finally:
                refresh.finish()
        self.report(site_id, result.outcome, _details(result), result.last_error)
        logger.info("site=%s scan %s: %d rows, %d revisions, %d files done, %d failed, "
                    "%d waiting", site_id, result.outcome, result.rows_imported, result.revisions,
                    len(result.files_completed), len(result.files_failed), result.backlog_files)
        return result.outcome


def _details(result: ScanResult) -> dict[str, Any]:
    return {"current_file": result.current_file, "next_record": result.next_record,
            "files_completed": result.files_completed,
            "files_failed": [k for k, _ in result.files_failed],
            "rows_imported": result.rows_imported, "revisions": result.revisions,
            "backlog_files": result.backlog_files, "backlog_bytes": result.backlog_bytes}


class _StatusRefresh:
    """Asks for a ``status.csv`` refresh after new revisions: at most once a minute during a
    scan, and once at its end."""

    def __init__(self, site: SiteConfig, enqueue: Callable[[dramatiq.Message[Any]], Any],
                 monotonic_s: Callable[[], float]) -> None:
        self.site = site
        self.enqueue = enqueue
        self.monotonic_s = monotonic_s
        self.pending = False
        self.last_s = monotonic_s()

    def revision_written(self, _number: int) -> None:
        self.pending = True
        if self.monotonic_s() - self.last_s >= STATUS_REFRESH_EVERY_S:
            self._send()

    def finish(self) -> None:
        if self.pending:
            self._send()

    def _send(self) -> None:
        self.pending = False
        self.last_s = self.monotonic_s()
        if not self.site.exports:
            return
        try:
            self.enqueue(export_message(self.site.site_id, status_only=True))
        except (DramatiqError, RedisError) as exc:  # an optimisation: the next cycle catches up
            logger.warning("site=%s could not queue a status refresh: %s", self.site.site_id,
                           exc)
