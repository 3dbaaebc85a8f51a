"""The ``export`` actor's work: one bounded export run for one site, under its export lease.

A regular cycle, a re-export of a range, or a status refresh.  A run that stops at its budget
with work left queues its own continuation, so a long backlog drains without waiting for the
next scheduled cycle while each message stays bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from shared.exports.cutoff import lookback_start, resolve_cutoff
from shared.exports.destination import Destination
from shared.exports.exporter import ExportBlocked, Exporter, ExportResult
from shared.fleet.leases import DEFAULT_LEASE_TTL_S, EXPORT_LEASE, Lease
from shared.fleet.messages import export_message
from shared.fleet.publisher import Message
from shared.formats.times import iso_utc
from shared.services import Services
from shared.store.sites import SiteConfig
from workers.jobs.base import UNFINISHED_OUTCOMES, JobOutcome, LeasedJob, WorkDone

logger = logging.getLogger(__name__)


class ExportJob(LeasedJob):
    job = "export"
    lease_job = EXPORT_LEASE

    def __init__(self, services: Services, exporter: Exporter,
                 enqueue: Callable[[Message], Any],
                 shutdown_requested: Callable[[], bool] = lambda: False,
                 lease_ttl_s: float = DEFAULT_LEASE_TTL_S) -> None:
        super().__init__(services, shutdown_requested, lease_ttl_s, enqueue)
        self.exporter = exporter

    def __call__(self, site_id: str, cutoff: str | None = None, first: int | None = None,
                 last: int | None = None, status_only: bool = False,
                 even_if_paused: bool = False) -> JobOutcome:
        return self.run(site_id, cutoff=cutoff, first=first, last=last, status_only=status_only,
                        even_if_paused=even_if_paused)

    def skip(self, site: SiteConfig, **options: Any) -> JobOutcome | None:
        paused = super().skip(site, **options)
        if paused is not None:
            return paused
        return None if site.exports else JobOutcome.SKIPPED

    def failed(self, site_id: str, reason: str) -> None:
        super().failed(site_id, reason)
        self.services.metrics.export_failures.labels(reason).inc()

    def work(self, site: SiteConfig, lease: Lease, *, cutoff: str | None = None,
             first: int | None = None, last: int | None = None, status_only: bool = False,
             **_options: Any) -> JobOutcome | WorkDone:
        site_id = site.site_id
        dest = Destination.for_site(site, self.services.access.for_site(site))
        if status_only:
            self.exporter.refresh_status(site, dest)
            return JobOutcome.STATUS
        try:
            result = self._export(site, dest, cutoff, first, last, self.stopper(lease))
        except ExportBlocked as exc:
            logger.error("site=%s export stopped: %s", site_id, exc)
            self.failed(site_id, "RevisionUnavailable")
            self.report(site_id, JobOutcome.BLOCKED, self._details(exc.result, success=False),
                        str(exc))
            return JobOutcome.BLOCKED
        outcome = JobOutcome(result.outcome)
        self.report(site_id, outcome, self._details(result, success=True), None)
        logger.info("site=%s export %s: %d revisions copied, position %d of %d", site_id,
                    outcome, len(result.exported), result.position, result.total_revisions)
        if outcome is JobOutcome.INTERRUPTED or (outcome in UNFINISHED_OUTCOMES
                                                  and result.exported):
            # The rest of the cycle (or of the re-exported range) goes on at once, behind the
            # messages already queued (not after a run that copied nothing: no busy loop).
            return WorkDone(outcome, export_message(site_id, cutoff=cutoff,
                                                    first=result.next_first, last=last)
                            if first is not None else export_message(site_id, cutoff=cutoff))
        return outcome

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

    def _details(self, result: ExportResult, *, success: bool) -> dict[str, Any]:
        details: dict[str, Any] = {
            "position": result.position, "total_revisions": result.total_revisions,
            "lag_revisions": result.lag_revisions, "last_run_exported": len(result.exported)}
        if success:
            details["last_success_at"] = iso_utc(self.services.clock.now_s())
        return details
