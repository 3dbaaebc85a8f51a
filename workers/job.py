"""What every leased, bounded job shares: timing, the per-site lease and the status record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from shared.errors import RetryableError, SiteNotFound
from shared.fleet.leases import Lease
from shared.formats.times import iso_utc
from shared.services import Services
from shared.store.jobstatus import JobStatus
from shared.store.sites import SiteConfig

logger = logging.getLogger(__name__)


class LeasedJob:
    """Base of the actors' work.  ``job`` names the metric label and the status record;
    ``lease_job`` the lease (import and export of one site hold different leases)."""

    job = "job"
    lease_job = "job"

    def __init__(self, services: Services, shutdown_requested: Callable[[], bool] = lambda: False,
                 lease_ttl_s: float = 30.0) -> None:
        self.services = services
        self.shutdown_requested = shutdown_requested
        self.lease_ttl_s = lease_ttl_s

    def timed(self, run: Callable[[], str]) -> str:
        """Run and observe the duration under the outcome it returned."""
        svc = self.services
        started = svc.clock.monotonic_s()
        outcome = "error"
        try:
            outcome = run()
            return outcome
        finally:
            svc.metrics.job_duration.labels(self.job, outcome).observe(
                svc.clock.monotonic_s() - started)

    def load_site(self, site_id: str) -> SiteConfig | None:
        """The site's configuration, or ``None`` (counted) for a site that no longer exists:
        its message is acked, there is nothing to retry."""
        try:
            return self.services.sites.get(site_id)
        except SiteNotFound:
            logger.warning("site=%s %s for an unknown site ignored", site_id, self.job)
            self.services.metrics.job_errors.labels(self.job, "SiteNotFound").inc()
            return None

    def take_lease(self, site_id: str) -> Lease | None:
        """The site's lease, or ``None`` (counted) when another worker holds it."""
        lease = Lease(self.services.redis, self.lease_job, site_id, ttl_s=self.lease_ttl_s)
        if lease.acquire():
            return lease
        logger.info("site=%s %s lease busy; message acked without work", site_id, self.job)
        self.services.metrics.lease_busy.labels(self.job, site_id).inc()
        return None

    def stopper(self, lease: Lease) -> Callable[[], bool]:
        return lambda: lease.lost or self.shutdown_requested()

    def report(self, site_id: str, outcome: str, details: dict[str, Any] | None,
               error: str | None) -> None:
        """Record the outcome for ``bucketbridge status``; keeps the last error until a new
        one, and detail fields not given anew.  Best effort: a status that cannot be written
        never fails the job."""
        svc = self.services
        try:
            now = iso_utc(svc.clock.now_s())
            previous = svc.statuses.read(site_id, self.job)
            svc.statuses.write(site_id, JobStatus(
                job=self.job, finished_at=now, outcome=outcome,
                last_error=error if error else previous.last_error,
                last_error_at=now if error else previous.last_error_at,
                details={**(previous.details or {}), **(details or {})} or None))
        except RetryableError as exc:
            logger.warning("site=%s could not record the %s status: %s", site_id, self.job, exc)
