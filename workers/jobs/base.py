"""What every leased, bounded job shares: the site, its lease, the one place job errors are
handled, the status record and the duration metric.

A job's ``work`` does the domain work under the lease and returns its outcome.  Errors are
handled here, by type: a missing or denied bucket is recorded in the site's status (the next
run tries again), a lost conditional write means another writer got there first, and a
retryable error is recorded and raised so dramatiq retries the message with backoff; anything
else is a bug or a broken store and dead-letters the message for an operator.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dramatiq.middleware import CurrentMessage

from shared.errors import (
    BucketError,
    IsolationError,
    PreconditionFailed,
    RetryableError,
    SiteConfigError,
    SiteNotFound,
)
from shared.fleet.isolationmemo import IsolationMemo
from shared.fleet.leases import DEFAULT_LEASE_TTL_S, Holder, Lease, worker_name
from shared.fleet.reportmemo import ReportMemo, fingerprint
from shared.formats.times import iso_utc, iso_utc_ms
from shared.services import Services
from shared.store.fleetstatus import JobSummary
from shared.store.jobstatus import JobStatus
from shared.store.sites import SiteConfig
from workers.jobs.isolation import IsolationGuard

logger = logging.getLogger(__name__)


class JobOutcome(StrEnum):
    """How a job's message ended; the ``outcome`` label of ``bucketbridge_job_duration``."""

    DONE = "done"  # nothing left to do
    BUDGET = "budget"  # stopped at its budget with work left
    INTERRUPTED = "interrupted"  # stopped early (shutdown, lease lost) with work left
    STATUS = "status"  # the export's status.csv was refreshed
    BLOCKED = "blocked"  # the export stopped before a revision it cannot export
    BUSY = "busy"  # another worker holds the site's lease: acked without work
    PAUSED = "paused"  # the site is paused
    SKIPPED = "skipped"  # nothing of this kind to do for the site (no export bucket)
    UNKNOWN_SITE = "unknown_site"  # the site was removed since the message was sent
    REFUSED = "refused"  # the site's configuration breaks tenant isolation: nothing done
    MISCONFIGURED = "misconfigured"  # the site's site.json cannot be read or accepted
    BUCKET_ERROR = "bucket_error"  # the customer's bucket is missing or denied
    LOST_RACE = "lost_race"  # another writer committed first
    ERROR = "error"  # raised: retried (retryable) or dead-lettered


# Outcomes where the job ran but could not do its work: ``drain`` reports them as failures.
FAILED_OUTCOMES = frozenset({JobOutcome.BUCKET_ERROR, JobOutcome.BLOCKED, JobOutcome.ERROR,
                             JobOutcome.REFUSED, JobOutcome.MISCONFIGURED})
# Outcomes with work left: the job queues its own continuation once its lease is released.
UNFINISHED_OUTCOMES = frozenset({JobOutcome.BUDGET, JobOutcome.INTERRUPTED})


@dataclass(frozen=True)
class JobRun:
    """How the last job run by this thread ended, and the error it recorded (if any)."""

    job: str
    site: str
    outcome: JobOutcome
    error: str | None = None


_last_run: ContextVar[JobRun | None] = ContextVar("bucketbridge_last_job_run", default=None)
_run_error: ContextVar[str | None] = ContextVar("bucketbridge_job_error", default=None)


def last_run() -> JobRun | None:
    """The job this thread ran last (``drain`` reads it after each message)."""
    return _last_run.get()


def forget_last_run() -> None:
    _last_run.set(None)


@dataclass(frozen=True)
class WorkDone:
    """What ``work`` returns when the job must go on: ``follow_up`` is queued at the back of
    its queue once the lease is released (so the next worker can take it at once)."""

    outcome: JobOutcome
    follow_up: Any = None  # a dramatiq message


class LeasedJob:
    """Base of the actors' work.  ``job`` names the metric label and the status record;
    ``lease_job`` the lease (import and export of one site hold different leases)."""

    job = "job"
    lease_job = "job"

    def __init__(self, services: Services, shutdown_requested: Callable[[], bool] = lambda: False,
                 lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
                 enqueue: Callable[[Any], Any] = lambda _m: None) -> None:
        self.services = services
        self.shutdown_requested = shutdown_requested
        self.lease_ttl_s = lease_ttl_s
        self.enqueue = enqueue
        self.guard = IsolationGuard(services.claims, IsolationMemo(
            services.redis, services.settings.store_bucket))
        self.memo = ReportMemo(services.redis, services.settings.store_bucket)

    # -- what a job defines -------------------------------------------------------------------

    def skip(self, site: SiteConfig, **options: Any) -> JobOutcome | None:
        """Why this message needs no work for ``site``, or ``None`` to go on.  A paused site
        is skipped unless the message was sent ``even_if_paused`` by an operator."""
        return JobOutcome.PAUSED if site.paused and not options.get("even_if_paused") else None

    def work(self, site: SiteConfig, lease: Lease, **options: Any) -> JobOutcome | WorkDone:
        """The job's work under the site's lease; reports its own outcome, and returns a
        ``WorkDone`` with the message that continues it when it stopped with work left."""
        raise NotImplementedError

    def failed(self, site_id: str, reason: str) -> None:
        """Count a failure (``reason``: the error's type name)."""
        self.services.metrics.job_errors.labels(self.job, reason).inc()

    # -- the shared run -----------------------------------------------------------------------

    def run(self, site_id: str, **options: Any) -> JobOutcome:
        """Load the site, take its lease, work; returns the outcome, observed as a metric."""
        svc = self.services
        started = svc.clock.monotonic_s()
        outcome = JobOutcome.ERROR
        _run_error.set(None)
        try:
            outcome = self._run(site_id, options)
            return outcome
        finally:
            svc.metrics.job_duration.labels(self.job, outcome).observe(
                svc.clock.monotonic_s() - started)
            _last_run.set(JobRun(self.job, site_id, outcome, _run_error.get()))

    def _run(self, site_id: str, options: dict[str, Any]) -> JobOutcome:
        site = self.load_site(site_id)
        if not isinstance(site, SiteConfig):
            return site
        skipped = self.skip(site, **options)
        if skipped is not None:
            logger.info("site=%s %s skipped: %s", site_id, self.job, skipped)
            return skipped
        lease = self.take_lease(site_id)
        if lease is None:
            return JobOutcome.BUSY
        with lease:
            done = self._work(site, lease, options)
        if isinstance(done, JobOutcome):
            return done
        if done.follow_up is not None:
            self.continue_with(site_id, done.follow_up)
        return done.outcome

    def continue_with(self, site_id: str, message: Any) -> None:
        """Queue the message that continues this job (at the back of its queue, so other
        sites get their turn first).  Best effort: the next scheduled slot also continues."""
        try:
            self.enqueue(message)
        except RetryableError as exc:
            logger.warning("site=%s could not queue the %s's continuation: %s", site_id,
                           self.job, exc)
            return
        logger.info("site=%s %s continues as message %s", site_id, self.job,
                    getattr(message, "message_id", "?"))

    def _work(self, site: SiteConfig, lease: Lease,
              options: dict[str, Any]) -> JobOutcome | WorkDone:
        site_id = site.site_id
        try:
            self.guard.verify(site)
            return self.work(site, lease, **options)
        except IsolationError as exc:
            logger.error("site=%s %s refused: %s", site_id, self.job, exc)
            self.failed(site_id, type(exc).__name__)
            self.report(site_id, JobOutcome.REFUSED, None, f"refused: {exc}")
            return JobOutcome.REFUSED
        except BucketError as exc:
            logger.error("site=%s %s: bucket problem: %s", site_id, self.job, exc)
            self.failed(site_id, type(exc).__name__)
            self.report(site_id, JobOutcome.ERROR, None, str(exc))
            return JobOutcome.BUCKET_ERROR
        except PreconditionFailed as exc:
            logger.warning("site=%s another writer got ahead (%s): %s", site_id,
                           self.job, exc)
            self.failed(site_id, type(exc).__name__)
            return JobOutcome.LOST_RACE
        except RetryableError as exc:
            logger.warning("site=%s %s: will retry: %s", site_id, self.job, exc)
            self.failed(site_id, type(exc).__name__)
            self.report(site_id, "retrying", None, str(exc))
            raise

    def load_site(self, site_id: str) -> SiteConfig | JobOutcome:
        """The site's configuration, or why there is none to act on (counted): a site that no
        longer exists, or whose ``site.json`` cannot be read or accepted.  Either way the
        message is acked: there is nothing a retry would fix."""
        try:
            return self.services.sites.get(site_id)
        except SiteNotFound:
            logger.warning("site=%s %s for an unknown site ignored", site_id, self.job)
            self.services.metrics.job_errors.labels(self.job, "SiteNotFound").inc()
            return JobOutcome.UNKNOWN_SITE
        except SiteConfigError as exc:
            logger.error("site=%s %s skipped: %s", site_id, self.job, exc)
            self.failed(site_id, type(exc).__name__)
            self.report(site_id, JobOutcome.MISCONFIGURED, None, str(exc))
            return JobOutcome.MISCONFIGURED

    def take_lease(self, site_id: str) -> Lease | None:
        """The site's lease, or ``None`` (counted) when another worker holds it."""
        message = CurrentMessage.get_current_message()
        holder = Holder(worker=worker_name(), since=iso_utc(self.services.clock.now_s()),
                        message_id=message.message_id if message is not None else "")
        lease = Lease(self.services.redis, self.lease_job, site_id, ttl_s=self.lease_ttl_s,
                      holder=holder)
        if lease.acquire():
            return lease
        logger.info("site=%s %s lease busy; message acked without work", site_id, self.job)
        self.services.metrics.lease_busy.labels(self.job).inc()
        self.summarise(site_id, JobOutcome.BUSY, None, None)
        return None

    def stopper(self, lease: Lease) -> Callable[[], bool]:
        return lambda: lease.lost or self.shutdown_requested()

    def report(self, site_id: str, outcome: str, details: dict[str, Any] | None,
               error: str | None) -> None:
        """Record the outcome for ``bucketbridge status`` and the fleet view; keeps the last
        error until a new one, and detail fields not given anew.  A run that reports what the
        last one did (``ReportMemo``) writes nothing.  Best effort: a status that cannot be
        written never fails the job."""
        svc = self.services
        if error:
            _run_error.set(error)
        said = fingerprint(outcome, error, details)
        self.memo.ran(self.job, site_id, svc.clock.now_s())
        if self.memo.unchanged(self.job, site_id, said):
            return
        try:
            now_s = svc.clock.now_s()
            now, precise = iso_utc(now_s), iso_utc_ms(now_s)
            previous = svc.statuses.read(site_id, self.job)
            svc.statuses.write(site_id, JobStatus(
                job=self.job, finished_at=now, outcome=outcome,
                last_error=error if error else previous.last_error,
                last_error_at=precise if error else previous.last_error_at,
                last_success_at=previous.last_success_at if error else precise,
                details={**(previous.details or {}), **(details or {})} or None))
        except RetryableError as exc:
            logger.warning("site=%s could not record the %s status: %s", site_id, self.job, exc)
            return
        if self.summarise(site_id, outcome, details, error):
            self.memo.remember(self.job, site_id, said)

    def summarise(self, site_id: str, outcome: str, details: dict[str, Any] | None,
                  error: str | None) -> bool:
        """Update the site's entry in the fleet status summary; whether it was written.
        A lease found busy changes nothing but the outcome (and counts towards how long the
        site has been busy), and is written once per ``ReportMemo`` period."""
        svc = self.services
        busy = outcome == JobOutcome.BUSY
        said = fingerprint(outcome, None, None)
        if busy and self.memo.unchanged(self.job, site_id, said):
            return True
        now = iso_utc_ms(svc.clock.now_s())
        d = details or {}
        state = JobSummary(
            outcome=str(outcome), at=now, error=error, error_at=now if error else None,
            success_at=None if error or busy else now,
            backlog_files=d.get("backlog_files"), backlog_bytes=d.get("backlog_bytes"),
            lag_revisions=d.get("lag_revisions"))
        try:
            svc.fleet_status.record(site_id, self.job, state)
        except (RetryableError, PreconditionFailed) as exc:
            logger.warning("site=%s could not record the %s state in the fleet summary: %s",
                           site_id, self.job, exc)
            return False
        if busy:
            self.memo.remember(self.job, site_id, said)
        return True
