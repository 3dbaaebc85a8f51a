"""The ``scan`` actor's work: one bounded import run for one site, under its import lease."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from shared.errors import RedisUnavailable
from shared.fleet.leases import DEFAULT_LEASE_TTL_S, IMPORT_LEASE, Lease
from shared.fleet.messages import export_message, scan_message
from shared.fleet.notices import Notices
from shared.fleet.publisher import Message
from shared.imports.scan import Importer, ScanResult
from shared.services import Services
from shared.store.sites import SiteConfig
from workers.jobs.base import UNFINISHED_OUTCOMES, JobOutcome, LeasedJob, WorkDone

logger = logging.getLogger(__name__)

# status.csv's "Total Revisions" must follow new revisions within minutes, not export cycles.
STATUS_REFRESH_EVERY_S = 60.0

# The site's notification count when this thread's scan began listing (``None``: it did not
# list, or it queued its own continuation, which looks again).
_events_at_listing: ContextVar[int | None] = ContextVar("bucketbridge_scan_events",
                                                        default=None)


class ScanJob(LeasedJob):
    job = "scan"
    lease_job = IMPORT_LEASE

    def __init__(self, services: Services, importer: Importer,
                 enqueue: Callable[[Message], Any] = lambda _m: None,
                 shutdown_requested: Callable[[], bool] = lambda: False,
                 lease_ttl_s: float = DEFAULT_LEASE_TTL_S) -> None:
        super().__init__(services, shutdown_requested, lease_ttl_s, enqueue)
        self.importer = importer
        self.notices = Notices(services.redis, services.settings.notify_pending_ttl_s)

    def __call__(self, site_id: str, even_if_paused: bool = False) -> JobOutcome:
        """Run one scan; returns the outcome."""
        _events_at_listing.set(None)
        outcome = self.run(site_id, even_if_paused=even_if_paused)
        self._after_notifications(site_id)
        return outcome

    def _listing(self, site_id: str) -> None:
        """Before listing, under the lease: a notification from now on needs a new scan."""
        try:
            _events_at_listing.set(self.notices.scan_starting(site_id))
        except RedisUnavailable as exc:  # the hourly scan remains the safety net
            logger.warning("site=%s notification state unavailable: %s", site_id, exc)

    def _after_notifications(self, site_id: str) -> None:
        """After the lease is released: a notification that arrived since this scan began
        listing may name a file it did not see, and its own scan may have found the lease
        busy; queue one more scan then."""
        seen = _events_at_listing.get()
        if seen is None:
            return
        try:
            if not self.notices.follow_up(site_id, seen,
                                          lambda: self.enqueue(scan_message(site_id))):
                return
        except RedisUnavailable as exc:
            logger.warning("site=%s could not queue a scan for new notifications: %s",
                           site_id, exc)
            return
        logger.info("site=%s notifications arrived during the scan: scanning again", site_id)

    def work(self, site: SiteConfig, lease: Lease, **_options: Any) -> JobOutcome | WorkDone:
        svc = self.services
        self._listing(site.site_id)
        refresh = _StatusRefresh(site, self.enqueue, svc.clock.monotonic_s)
        try:
            result = self.importer.scan(site, svc.access.for_site(site),
                                        svc.settings.import_budget_s,
                                        should_stop=self.stopper(lease),
                                        on_revision=refresh.revision_written)
        finally:
            refresh.finish()
        outcome = JobOutcome(result.outcome)
        self.report(site.site_id, outcome, _details(result), result.last_error)
        logger.info("site=%s scan %s: %d rows, %d revisions, %d files done, %d failed, "
                    "%d waiting", site.site_id, outcome, result.rows_imported, result.revisions,
                    len(result.files_completed), len(result.files_failed), result.backlog_files)
        progressed = bool(result.revisions or result.files_completed or result.files_failed)
        if outcome is JobOutcome.INTERRUPTED or (outcome in UNFINISHED_OUTCOMES and progressed):
            # Work is left: go on at once, behind the messages already queued (a paused site's
            # continuation is skipped, like any of its messages).  A run whose budget ran out
            # before it got anywhere does not: the next slot tries again, no busy loop.
            _events_at_listing.set(None)  # the continuation looks again
            return WorkDone(outcome, scan_message(site.site_id))
        return outcome


def _details(result: ScanResult) -> dict[str, Any]:
    return {"current_file": result.current_file, "next_record": result.next_record,
            "files_completed": result.files_completed,
            "files_failed": [k for k, _ in result.files_failed],
            "rows_imported": result.rows_imported, "revisions": result.revisions,
            "backlog_files": result.backlog_files, "backlog_bytes": result.backlog_bytes}


class _StatusRefresh:
    """Asks for a ``status.csv`` refresh after new revisions: at most once a minute during a
    scan, and once at its end."""

    def __init__(self, site: SiteConfig, enqueue: Callable[[Message], Any],
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
        except RedisUnavailable as exc:  # an optimisation: the next cycle catches up
            logger.warning("site=%s could not queue a status refresh: %s", self.site.site_id,
                           exc)
