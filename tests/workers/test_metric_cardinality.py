"""The series a worker or a scheduler exports do not grow with the number of sites.

Worker metrics carry no ``site`` label; the scheduler's per-site families hold at most
``attention_sites`` series each, however many sites there are."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from producers.fleetgauges import FleetGauges
from producers.fleetview import fleet_health
from shared.formats.times import iso_utc
from shared.metrics import SITE, Metrics
from shared.services import Services
from shared.store.fleetstatus import JobSummary, SiteSummary
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.shared.exports.test_exporter import write_revision
from tests.workers.jobs.test_jobs import export_job, scan_job

pytestmark = pytest.mark.timeout(120)

# The scheduler's bounded per-site families: the only metrics with a site label.
BOUNDED_FAMILIES = {"site_import_backlog", "site_export_lag", "site_export_last_success",
                    "site_problem_since"}
SERIES_LIMIT = 2000


def series_count(metrics: Metrics) -> int:
    return sum(len(family.samples) for family in metrics.registry.collect())


def test_only_the_schedulers_bounded_families_have_a_site_label() -> None:
    metrics = Metrics(CollectorRegistry())
    with_site = {attr for attr, m in vars(metrics).items()
                 if isinstance(m, MetricWrapperBase) and SITE in m._labelnames}
    assert with_site == BOUNDED_FAMILIES


def _health_of(n_sites: int, prefix: str = "site") -> list[Any]:
    configs: dict[str, SiteConfig | str] = {}
    summaries = []
    for i in range(n_sites):
        site = f"{prefix}{i:06d}"
        if i % 100 == 99:
            configs[site] = "unreadable site configuration: not JSON"
            continue
        configs[site] = SiteConfig(site_id=site, import_bucket="imports",
                                   base_filename="a.csv", export_bucket="exports",
                                   paused=i % 50 == 7)
        at = iso_utc(1_700_000_000 + i)
        failing = i % 3 == 0
        summaries.append(SiteSummary(site, {
            "scan": JobSummary(outcome="error" if failing else "done", at=at, since=at,
                               error="AccessDenied" if failing else None,
                               error_at=at if failing else None, backlog_files=i % 7,
                               backlog_bytes=i),
            "export": JobSummary(outcome="budget" if i % 5 == 0 else "done", at=at, since=at,
                                 success_at=at, lag_revisions=i % 11)}))
    return fleet_health(configs, summaries)


def test_the_schedulers_series_stay_bounded_for_10000_sites() -> None:
    # Given a scheduler's metrics after it published the health of 10,000 sites, a third
    # failing, many with backlogs, lags and problems, and some misconfigured
    metrics = Metrics(CollectorRegistry())
    gauges = FleetGauges(metrics, attention_sites=20)
    gauges.publish(_health_of(10_000))
    # Then it exports far fewer than 2,000 series, 20 per per-site family
    assert series_count(metrics) <= SERIES_LIMIT
    for attr in BOUNDED_FAMILIES:
        family = getattr(metrics, attr)
        assert len(next(iter(family.collect())).samples) == 20, attr
    # And a refresh with other sites replaces the series rather than adding to them
    gauges.publish(_health_of(10_000, prefix="other"))
    assert series_count(metrics) <= SERIES_LIMIT
    shown = next(iter(metrics.site_problem_since.collect())).samples
    assert len(shown) == 20
    assert all(s.labels["site"].startswith("other") for s in shown)


@pytest.mark.slow(8)
def test_a_worker_exports_as_many_series_for_many_sites_as_for_one(
        services: Services, s3: S3, import_bucket: str, export_bucket: str) -> None:
    # Given sites that each import a file (one bad row) and export a revision
    scan, export = scan_job(services, []), export_job(services, [])

    def touch(site: str) -> None:
        services.sites.create(SiteConfig(site_id=site, import_bucket=import_bucket,
                                         base_filename=f"{site}x.csv",
                                         export_bucket=export_bucket, export_prefix=f"{site}/"))
        s3.put(import_bucket, f"{site}x.csv",
               b"Identity,Timestamp,Event\na,1700000000,E\n,1700000000,E\n")
        write_revision(services.store, f"{site}e", 1, services.clock.now_s() - 2 * 86400,
                       [1700000000])
        services.sites.create(SiteConfig(site_id=f"{site}e", import_bucket=import_bucket,
                                         base_filename=f"{site}e.csv",
                                         export_bucket=export_bucket,
                                         export_prefix=f"{site}e/"))
        assert scan(site) == "done"
        assert export(f"{site}e") == "done"

    # When one site has run, then 24 more
    touch("s00")
    after_one = series_count(services.metrics)
    for i in range(1, 25):
        touch(f"s{i:02d}")
    # Then the worker's series did not grow with the sites
    assert series_count(services.metrics) == after_one
    assert after_one <= SERIES_LIMIT
