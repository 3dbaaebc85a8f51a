"""The ``export`` actor's work: one bounded export run for one site, under its export lease.

A regular cycle, a re-export of a range, or a status refresh.  A run that stops at its budget
with work left queues its own continuation, so a long backlog drains without waiting for the
next scheduled cycle while each message stays bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq

from shared.errors import BucketError, PreconditionFailed, RetryableError
from shared.exports.exporter import Destination, Exporter, ExportResult
from shared.fleet.leases import EXPORT_LEASE
from shared.fleet.messages import export_message
from shared.formats.exportfiles import lookback_start, resolve_cutoff
from shared.formats.times import iso_utc
from shared.services import Services
from shared.store.sites import SiteConfig
from workers.job import LeasedJob

logger = logging.getLogger(__name__)


class ExportJob(LeasedJob):
    job = "export"
    lease_job = EXPORT_LEASE

    def __init__(self, services: Services, exporter: Exporter,
                 enqueue: Callable[[dramatiq.Message[Any]], Any],
                 shutdown_requested: Callable[[], bool] = lambda: False,
                 lease_ttl_s: float = 30.0) -> None:
        super().__init__(services, shutdown_requested, lease_ttl_s)
        self.exporter = exporter
        self.enqueue = enqueue

    def __call__(self, site_id: str, cutoff: str | None = None, first: int | None = None,
                 last: int | None = None, status_only: bool = False) -> str:
        return self.timed(lambda: self._run(site_id, cutoff, first, last, status_only))

    def _run(self, site_id: str, cutoff: str | None, first: int | None, last: int | None,
             status_only: bool) -> str:
        svc = self.services
        site = self.load_site(site_id)
        if site is None:
            return "unknown_site"
        if site.paused or not site.exports:
            logger.info("site=%s paused or without export bucket; export skipped", site_id)
            return "skipped"
        lease = self.take_lease(site_id)
        if lease is None:
            return "busy"
        with lease:
            try:
                dest = Destination.for_site(site, svc.access.for_site(site))
                if status_only:
                    self.exporter.refresh_status(site, dest)
                    return "status"
                result = self._export(site, dest, cutoff, first, last, self.stopper(lease))
            except BucketError as exc:
                logger.error("site=%s export bucket problem: %s", site_id, exc)
                self._failed(site_id, type(exc).__name__)
                self.report(site_id, "error", None, str(exc))
                return "bucket_error"
            except PreconditionFailed as exc:
                logger.warning("site=%s another exporter committed first: %s", site_id, exc)
                self._failed(site_id, "PreconditionFailed")
                return "lost_race"
            except RetryableError as exc:
                self._failed(site_id, type(exc).__name__)
                self.report(site_id, "retrying", None, str(exc))
                raise
        if result.outcome == "blocked":
            logger.error("site=%s export stopped: %s", site_id, result.error)
            self._failed(site_id, "RevisionUnavailable")
        if result.outcome == "budget":
            self.enqueue(export_message(site_id, cutoff=cutoff, first=result.next_first,
                                        last=last) if first is not None
                         else export_message(site_id, cutoff=cutoff))
        self.report(site_id, result.outcome, self._details(result), result.error)
        logger.info("site=%s export %s: %d revisions copied, position %d of %d", site_id,
                    result.outcome, len(result.exported), result.position,
                    result.total_revisions)
        return result.outcome

    def _export(self, site: SiteConfig, dest: Destination, cutoff: str | None,
                first: int | None, last: int | None, should_stop: Callable[[], bool],
                ) -> ExportResult:
        budget_s = self.services.settings.export_budget_s
        if first is not None:
            return self.exporter.reexport(site, dest, first, last, budget_s, should_stop)
        now_s = self.services.clock.now_s()
        return self.exporter.cycle(
            site, dest, budget_s, resolve_cutoff(cutoff, now_s),
            lookback_start(now_s, self.services.settings.export_lookback_days), should_stop)

    def _failed(self, site_id: str, reason: str) -> None:
        self.services.metrics.export_failures.labels(site_id, reason).inc()
        self.services.metrics.job_errors.labels(self.job, reason).inc()

    def _details(self, result: ExportResult) -> dict[str, Any]:
        details: dict[str, Any] = {
            "position": result.position, "total_revisions": result.total_revisions,
            "lag_revisions": result.lag_revisions, "last_run_exported": len(result.exported)}
        if result.outcome != "blocked":
            details["last_success_at"] = iso_utc(self.services.clock.now_s())
        return details
