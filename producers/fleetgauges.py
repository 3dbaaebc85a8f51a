"""The scheduler's fleet gauges: sites by state, fleet-wide backlog and lag, and the bounded
``bucketbridge_site_*`` families that let an alert name the sites needing attention.

Each per-site family holds at most ``attention_sites`` series (the largest backlogs, the largest
export lags, the oldest last successes, the longest-standing problems), whatever the size of
the fleet; a site that leaves the top of a family has its series removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import Gauge

from producers.fleetview import SiteHealth, SiteState
from shared.formats.times import parse_iso_utc
from shared.metrics import Metrics

DEFAULT_ATTENTION_SITES = 20


class _BoundedFamily:
    """A labelled gauge whose set of series is replaced whole at each refresh."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self.shown: set[tuple[str, ...]] = set()

    def replace(self, values: dict[tuple[str, ...], float]) -> None:
        for labels in self.shown - values.keys():
            self.gauge.remove(*labels)
        for labels, value in values.items():
            self.gauge.labels(*labels).set(value)
        self.shown = set(values)


def _top(rows: Sequence[SiteHealth], key: Callable[[SiteHealth], Any], n: int,
         ) -> list[SiteHealth]:
    return sorted(rows, key=key)[:n]


class FleetGauges:
    def __init__(self, metrics: Metrics, attention_sites: int = DEFAULT_ATTENTION_SITES) -> None:
        self.metrics = metrics
        self.n = attention_sites
        self.backlog = _BoundedFamily(metrics.site_import_backlog)
        self.lag = _BoundedFamily(metrics.site_export_lag)
        self.last_success = _BoundedFamily(metrics.site_export_last_success)
        self.problems = _BoundedFamily(metrics.site_problem_since)

    def publish(self, health: Sequence[SiteHealth]) -> None:
        m = self.metrics
        for state in SiteState:
            m.sites.labels(state.value).set(sum(1 for h in health if h.state is state))
        m.fleet_import_backlog_files.set(sum(h.backlog_files for h in health))
        m.fleet_export_lag_revisions.set(sum(h.lag_revisions for h in health))
        # Backlog and lag are what the sites' last runs saw, paused sites included (a paused
        # site's backlog still grows); a last success and a problem only matter for sites the
        # fleet is working for.
        known = [h for h in health if h.config is not None]
        self.backlog.replace({(h.site,): h.backlog_files for h in _top(
            [h for h in known if h.job("scan").backlog_files is not None],
            lambda h: (-h.backlog_files, h.site), self.n)})
        self.lag.replace({(h.site,): h.lag_revisions for h in _top(
            [h for h in known if h.exports and h.job("export").lag_revisions is not None],
            lambda h: (-h.lag_revisions, h.site), self.n)})
        exporting = [(parse_iso_utc(s), h.site) for h in known if h.exports
                     and h.state is not SiteState.PAUSED and (s := h.job("export").success_at)]
        self.last_success.replace({(site,): at for at, site in sorted(exporting)[:self.n]})
        problems = []
        for h in health:
            if h.state is SiteState.PAUSED:
                continue
            if h.config is None:
                problems.append((float("-inf"), h.site, "config", "misconfigured"))
                continue
            for job, summary in h.jobs.items():
                if job == "export" and not h.exports:
                    continue
                problem = summary.problem
                if problem is not None and summary.since:
                    problems.append((parse_iso_utc(summary.since), h.site, job, problem))
        problems.sort()
        # A configuration that cannot be read has no start time: it shows as 0 (always old).
        self.problems.replace({(site, job, problem): max(since, 0.0)
                               for since, site, job, problem in problems[:self.n]})
