"""A site whose site.json cannot be read or accepted is skipped, named and counted; the tick,
the jobs and every other site go on."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import orjson
import pytest

from producers.scheduler import Scheduler
from shared.clock import FrozenClock
from shared.metrics import Metrics
from shared.services import Services
from shared.store.sites import SiteConfig, site_config_key
from tests.conftest import Env, invoke_cli
from tests.workers.jobs.test_jobs import export_job, scan_job

pytestmark = pytest.mark.timeout(60)

BROKEN = {
    "not-json": b"{\"site_id\": \"not-json\", \"import_bu",
    "bad-bucket": b'{"site_id": "bad-bucket", "import_bucket": "NO", "base_filename": "a.csv"}',
    "other-name": b'{"site_id": "acme", "import_bucket": "imports-x", "base_filename": "a.csv"}',
}


@pytest.fixture
def fleet(services: Services, import_bucket: str) -> list[str]:
    """Three good sites, and three whose site.json was edited by hand into something unusable
    (the index learns of them when it is refreshed, as after any change or a rebuild)."""
    good = ["alpha", "beta", "gamma"]
    for i, site in enumerate(good):
        services.sites.create(SiteConfig(site_id=site, import_bucket=import_bucket,
                                         base_filename=f"g{i}.csv"))
    for site, body in BROKEN.items():
        services.store_s3.put(services.settings.store_bucket, site_config_key(site), body)
        services.index.refresh(site)
    return good


def test_the_scheduler_skips_a_broken_site_and_publishes_the_others(
        services: Services, redis_url: str, fleet: list[str],
        caplog: pytest.LogCaptureFixture) -> None:
    published: list[dramatiq.Message[Any]] = []
    metrics = Metrics()
    replica = Scheduler(services.sites, services.redis, published.append, FrozenClock(),
                        metrics, scan_interval_s=3600, export_interval_s=7200,
                        fleet_status=services.fleet_status)
    with caplog.at_level(logging.ERROR, logger="producers.scheduler"):
        replica.tick()
    # Then every good site got its scan
    assert sorted(m.args[0] for m in published) == fleet
    # And each broken one is named in the log and counted
    for site in BROKEN:
        assert any(f"site={site} skipped" in r.getMessage() for r in caplog.records), site
    assert metrics.registry.get_sample_value("bucketbridge_site_configs_skipped_total") == 3
    # And the fleet gauges count them as misconfigured
    assert metrics.registry.get_sample_value("bucketbridge_sites",
                                             {"state": "misconfigured"}) == 3
    assert metrics.registry.get_sample_value("bucketbridge_sites", {"state": "active"}) == 3


def test_a_job_for_a_broken_site_ends_misconfigured_without_retrying(
        services: Services, fleet: list[str]) -> None:
    for job in (scan_job(services, []), export_job(services, [])):
        # When the job runs for a site whose site.json is not JSON
        outcome = job("not-json")
        # Then it ends "misconfigured", recorded with the reason, nothing raised
        assert outcome == "misconfigured"
        status = services.statuses.read("not-json", job.job)
        assert status.outcome == "misconfigured"
        assert status.last_error and status.last_error.startswith(
            "site not-json: unreadable site configuration")
    # And the other sites' jobs go on
    assert scan_job(services, [])("alpha") == "done"


def test_scheduler_once_goes_on_past_a_broken_site(env: Env, services: Services,
                                                   fleet: list[str]) -> None:
    result = invoke_cli(env, "scheduler", "--once")
    assert result.returncode == 0, result.stderr
    assert "3 message(s) published" in result.stdout


def test_a_hand_edited_site_reaches_the_fleet_view_after_a_reindex(
        env: Env, services: Services, fleet: list[str], import_bucket: str) -> None:
    # Given a site.json written by hand, which the index has not seen
    services.store_s3.put(services.settings.store_bucket, site_config_key("manual"),
                          SiteConfig(site_id="manual", import_bucket=import_bucket,
                                     base_filename="manual.csv").to_json())
    before = invoke_cli(env, "sites", "list", "--json")
    assert "manual" not in {s["site"] for s in orjson.loads(before.stdout)}
    # When the index is rebuilt
    rebuilt = invoke_cli(env, "sites", "reindex")
    assert (rebuilt.returncode, rebuilt.stderr) == (0, "")
    assert "7 site(s)" in rebuilt.stdout
    # Then the fleet view has it, and the broken ones with their reasons
    listed = orjson.loads(invoke_cli(env, "sites", "list", "--json").stdout)
    states = {s["site"]: s["state"] for s in listed}
    assert states["manual"] == "active"
    assert {site for site, state in states.items() if state == "misconfigured"} == set(BROKEN)
