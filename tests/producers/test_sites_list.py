"""``bucketbridge sites list``: the fleet's health, worst first, at a cost that does not grow
with the number of sites."""

from __future__ import annotations

import orjson
import pytest

from shared.services import Services
from shared.store.fleetstatus import FLEET_STATUS_SHARDS
from shared.store.siteindex import INDEX_SHARDS
from shared.store.sites import SiteConfig, site_config_key
from tests.conftest import Env, invoke_cli
from tests.counting import s3_requests
from tests.producers.test_cli import table_rows
from tests.producers.test_scheduler_cost import write_configs
from tests.workers.jobs.test_jobs import scan_job

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def fleet(services: Services, import_bucket: str, export_bucket: str) -> None:
    """ok: scanned; gone: its import bucket is missing; resting: paused;
    broken: a site.json edited by hand into something unusable; fresh: never ran."""
    s3 = services.store_s3
    configs = [
        SiteConfig(site_id="ok", import_bucket=import_bucket, base_filename="ok.csv",
                   export_bucket=export_bucket),
        SiteConfig(site_id="gone", import_bucket="no-such-bucket-here",
                   base_filename="gone.csv"),
        SiteConfig(site_id="resting", import_bucket=import_bucket, base_filename="rest.csv"),
        SiteConfig(site_id="fresh", import_bucket=import_bucket, base_filename="fresh.csv"),
    ]
    for config in configs:
        services.sites.create(config)
    services.sites.set_paused("resting", True)
    s3.put(services.settings.store_bucket, site_config_key("broken"), b"{not json")
    services.index.refresh("broken")
    scan = scan_job(services, [])
    s3.put(import_bucket, "ok-1.csv", b"Identity,Timestamp,Event\na,1700000000,E\n")
    assert scan("ok") == "done"
    services.clock.advance(60)
    assert scan("gone") == "bucket_error"
    services.clock.advance(120)
    assert scan("ok") == "done"  # the same report again: only its time is noted (in Redis)
    services.clock.advance(600)


def test_the_fleet_view_lists_every_site_worst_first(env: Env, services: Services,
                                                     fleet: None) -> None:
    result = invoke_cli(env, "sites", "list", BUCKETBRIDGE_SCAN_INTERVAL_S="3600")
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    # Then a header, and one row per site: misconfigured, failing, active, paused
    assert rows[0] == ["Site", "State", "Last scan", "Last export", "Backlog", "Export lag",
                       "Last error"]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        ("broken", "misconfigured"), ("gone", "failing"), ("fresh", "active"),
        ("ok", "active"), ("resting", "paused")]
    by_site = {r[0]: r for r in rows[1:]}
    assert by_site["broken"][6].startswith("unreadable site configuration: unexpected char")
    assert by_site["gone"][2].startswith("error ")
    assert "no-such-bucket-here" in by_site["gone"][6] and by_site["gone"][6].endswith("ago")
    assert by_site["ok"][2].startswith("done ") and by_site["ok"][2].endswith(" ago")
    assert by_site["ok"][3] == "never"
    assert by_site["ok"][4] == "0 file(s), 0 bytes"
    assert by_site["fresh"][2:6] == ["never", "not configured", "-", "-"]


def test_failing_keeps_the_sites_that_need_attention_and_json_has_every_figure(
        env: Env, fleet: None) -> None:
    failing = invoke_cli(env, "sites", "list", "--failing")
    assert [r[0] for r in table_rows(failing.stdout)[1:]] == ["broken", "gone"]
    as_json = orjson.loads(invoke_cli(env, "sites", "list", "--json").stdout)
    assert [s["site"] for s in as_json] == ["broken", "gone", "fresh", "ok", "resting"]
    ok = as_json[3]
    assert (ok["state"], ok["scan"]["outcome"], ok["backlog_files"], ok["export"]) == (
        "active", "done", 0, None)
    gone = as_json[1]
    assert gone["scan"]["problem"] == "error" and "no-such-bucket-here" in gone["last_error"]
    # (the fixture's clock is frozen in the past: ages are compared, not read)
    assert gone["scan"]["age_s"] - ok["scan"]["age_s"] == pytest.approx(120, abs=0.01)
    assert gone["last_error_age_s"] == pytest.approx(gone["scan"]["age_s"], abs=0.01)


def test_the_fleet_view_costs_the_same_for_200_sites_as_for_20(
        env: Env, services: Services, import_bucket: str) -> None:
    store = services.settings.store_bucket
    write_configs(services, import_bucket, 20)
    with s3_requests(store) as small:
        assert invoke_cli(env, "sites", "list").returncode == 0
    for i in range(20, 200):
        config = SiteConfig(site_id=f"site{i:04d}", import_bucket=import_bucket,
                            base_filename=f"s{i:04d}.csv")
        services.store_s3.put(store, site_config_key(config.site_id), config.to_json())
    services.index.rebuild()
    with s3_requests(store) as large:
        listed = invoke_cli(env, "sites", "list")
    assert len(table_rows(listed.stdout)) == 201
    # the index's marker, listing and shards; the summary's listing and shards
    assert len(large) == len(small) <= 1 + 1 + INDEX_SHARDS + 1 + FLEET_STATUS_SHARDS
    assert not [r for r in large.requests if "site.json" in r[1]]
