"""The fleet's health, site by site, from the site index and the fleet status summary: what
``bucketbridge sites list`` shows and what the scheduler's bounded alert series are taken from.

Pure: it reads what it is given, so a 100,000-site fleet is sorted in memory, without I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from shared.formats.times import parse_iso_utc
from shared.store.fleetstatus import FAILING_PROBLEMS, JobSummary, SiteSummary
from shared.store.sites import SiteConfig

JOBS = ("scan", "export")


class SiteState(StrEnum):
    """A site's state in the fleet view, worst first."""

    MISCONFIGURED = "misconfigured"  # its site.json cannot be read or accepted
    REFUSED = "refused"  # its configuration breaks tenant isolation: the fleet does nothing
    FAILING = "failing"  # its last scan or export ended in an error that is not resolved
    ACTIVE = "active"
    PAUSED = "paused"


_RANK = {state: rank for rank, state in enumerate(SiteState)}
NEEDS_ATTENTION = frozenset({SiteState.MISCONFIGURED, SiteState.REFUSED, SiteState.FAILING})


@dataclass(frozen=True)
class SiteHealth:
    site: str
    state: SiteState
    config: SiteConfig | None  # None: misconfigured
    config_error: str | None
    jobs: Mapping[str, JobSummary]

    def job(self, job: str) -> JobSummary:
        return self.jobs.get(job) or JobSummary()

    @property
    def exports(self) -> bool:
        return self.config is not None and self.config.exports

    @property
    def backlog_files(self) -> int:
        return self.job("scan").backlog_files or 0

    @property
    def lag_revisions(self) -> int:
        return (self.job("export").lag_revisions or 0) if self.exports else 0

    @property
    def last_error(self) -> tuple[str, str | None] | None:
        """The newest unresolved error of its jobs (or the configuration's), and when."""
        if self.config_error:
            return self.config_error, None
        found = [(j.error_at or "", j.error) for j in self.jobs.values()
                 if j.error and j.problem is not None]
        if not found:
            return None
        at, error = max(found)
        return str(error), at or None

    def problem_since_s(self) -> float | None:
        """When the oldest of its current problems began."""
        times = [parse_iso_utc(j.since) for j in self.jobs.values()
                 if j.problem is not None and j.since]
        return min(times) if times else None


def state_of(config: SiteConfig | None, jobs: Mapping[str, JobSummary]) -> SiteState:
    if config is None:
        return SiteState.MISCONFIGURED
    if config.paused:
        return SiteState.PAUSED
    relevant = [jobs[j] for j in JOBS if j in jobs and (j == "scan" or config.exports)]
    problems = {j.problem for j in relevant}
    if "refused" in problems:
        return SiteState.REFUSED
    if problems & FAILING_PROBLEMS:
        return SiteState.FAILING
    return SiteState.ACTIVE


def fleet_health(configs: Mapping[str, SiteConfig | str],
                 summaries: Iterable[SiteSummary]) -> list[SiteHealth]:
    """One ``SiteHealth`` per registered site (``configs``: a configuration, or the reason it
    could not be read), worst first: state, then the oldest problem, the largest backlog and
    the largest export lag; then by site id."""
    by_site = {s.site: s.jobs for s in summaries}
    rows = []
    for site, config in configs.items():
        jobs = by_site.get(site, {})
        if isinstance(config, str):
            rows.append(SiteHealth(site, SiteState.MISCONFIGURED, None, config, jobs))
        else:
            rows.append(SiteHealth(site, state_of(config, jobs), config, None, jobs))
    rows.sort(key=_worst_first)
    return rows


def _worst_first(h: SiteHealth) -> tuple[int, float, int, int, str]:
    since = h.problem_since_s()
    return (_RANK[h.state], since if since is not None else float("inf"), -h.backlog_files,
            -h.lag_revisions, h.site)
