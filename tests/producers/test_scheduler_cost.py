"""What a scheduler tick costs: S3 requests counted at moto's server, Redis round trips counted
at the client.  A tick's cost follows what is due and what changed, not the number of sites."""

from __future__ import annotations

from typing import Any

import dramatiq
import pytest

from producers.scheduler import FLEET_REFRESH_S, Scheduler
from shared.clock import FrozenClock
from shared.fleet.messages import EXPORT_ACTOR, SCAN_ACTOR
from shared.metrics import Metrics
from shared.services import Services
from shared.store.fleetstatus import FLEET_STATUS_PREFIX, JobSummary
from shared.store.siteindex import INDEX_SHARDS
from shared.store.sites import SiteConfig, site_config_key
from tests.counting import CountingConnection, counting_redis, s3_requests

pytestmark = pytest.mark.timeout(120)

N_SITES = 200
INTERVAL_S = 3600


def write_configs(services: Services, import_bucket: str, n: int) -> None:
    """``n`` site.json files written directly (as a bulk import would), then the index built."""
    for i in range(n):
        config = SiteConfig(site_id=f"site{i:04d}", import_bucket=import_bucket,
                            base_filename=f"s{i:04d}.csv")
        services.store_s3.put(services.settings.store_bucket, site_config_key(config.site_id),
                              config.to_json())
    assert services.index.rebuild() == n


def scheduler(services: Services, redis_url: str, clock: FrozenClock,
              published: list[dramatiq.Message[Any]]) -> Scheduler:
    return Scheduler(services.sites, counting_redis(redis_url), published.append, clock,
                     Metrics(), scan_interval_s=INTERVAL_S, export_interval_s=2 * INTERVAL_S)


def test_an_unchanged_fleet_costs_one_s3_request_per_tick(
        services: Services, redis_url: str, import_bucket: str) -> None:
    # Given 200 registered sites and a scheduler that has started (its cold start reads the
    # index: the marker and each shard, never a site.json)
    write_configs(services, import_bucket, N_SITES)
    store = services.settings.store_bucket
    clock = FrozenClock()
    published: list[dramatiq.Message[Any]] = []
    replica = scheduler(services, redis_url, clock, published)
    CountingConnection.sent = 0
    with s3_requests(store) as cold:
        replica.tick()
    assert len(published) == N_SITES
    shards = [i.key for i in services.store_s3.list(store, "index/sites/")
              if not i.key.endswith("changed.json")]
    assert len(cold) == 1 + 1 + len(shards)  # the marker, a listing, each shard
    assert len(shards) == INDEX_SHARDS  # 200 sites: every shard has some
    assert not [r for r in cold.requests if "site.json" in r[1]]
    cold_round_trips = CountingConnection.sent
    assert cold_round_trips <= 10  # claims and marks pipelined, whatever the site count
    # When it ticks again, every 15 s over an interval (each site's next slot comes once)
    published.clear()
    ticks = INTERVAL_S // 15
    CountingConnection.sent = 0
    with s3_requests(store) as steady:
        for _ in range(ticks):
            clock.advance(15)
            replica.tick()
    # Then each tick read only the index's change marker, and each site was published once
    assert len(steady) == ticks
    assert {r[1].split("?")[0] for r in steady.requests} == {f"/{store}/index/sites/changed.json"}
    assert sorted(m.args[0] for m in published) == sorted(f"site{i:04d}" for i in range(N_SITES))
    # And Redis saw a few pipelined round trips per tick, not some per site
    assert CountingConnection.sent <= ticks * 4 + N_SITES // 2


def test_a_site_added_paused_or_resumed_takes_effect_on_the_next_tick(
        services: Services, redis_url: str, import_bucket: str, export_bucket: str) -> None:
    write_configs(services, import_bucket, 20)
    clock = FrozenClock()
    published: list[dramatiq.Message[Any]] = []
    replica = scheduler(services, redis_url, clock, published)
    replica.tick()
    published.clear()
    # When a site is added through the registry (as `sites add` does)
    services.sites.create(SiteConfig(site_id="newco", import_bucket=import_bucket,
                                     base_filename="new.csv", export_bucket=export_bucket))
    clock.advance(15)
    store = services.settings.store_bucket
    with s3_requests(store) as log:
        replica.tick()
    # Then the next tick publishes its scan and export, reading the marker, a listing of the
    # shards and the one shard whose ETag changed
    assert sorted((m.actor_name, m.args[0]) for m in published) == [
        (EXPORT_ACTOR, "newco"), (SCAN_ACTOR, "newco")]
    shard = services.index.docs.key(services.index.docs.shard_of("newco"))
    assert [r[1].split("?")[0] for r in log.requests] == [
        f"/{store}/index/sites/changed.json", f"/{store}", f"/{store}/{shard}"]
    # And a paused site is not published after its next slot, until it is resumed
    published.clear()
    services.sites.set_paused("newco", True)
    clock.advance(2 * INTERVAL_S)
    replica.tick()
    assert "newco" not in {m.args[0] for m in published}
    published.clear()
    services.sites.set_paused("newco", False)
    clock.advance(15)
    replica.tick()
    assert sorted((m.actor_name, m.args[0]) for m in published) == [
        (EXPORT_ACTOR, "newco"), (SCAN_ACTOR, "newco")]
    # And a removed site is not published any more
    published.clear()
    services.sites.delete("newco")
    clock.advance(2 * INTERVAL_S)
    replica.tick()
    assert "newco" not in {m.args[0] for m in published}


def test_a_missing_index_is_rebuilt_by_the_first_tick(
        services: Services, redis_url: str, import_bucket: str) -> None:
    # Given sites whose index was lost (deleted by hand)
    write_configs(services, import_bucket, 30)
    store = services.settings.store_bucket
    for info in list(services.store_s3.list(store, "index/")):
        services.store_s3.delete(store, info.key)
    # When a scheduler starts
    published: list[dramatiq.Message[Any]] = []
    scheduler(services, redis_url, FrozenClock(), published).tick()
    # Then its first tick rebuilt the index from sites/ and published every site
    assert len(published) == 30
    assert services.store_s3.head(store, "index/sites/changed.json") is not None


def test_a_flushed_redis_loses_no_slot_and_publishes_none_twice(
        services: Services, redis_url: str, import_bucket: str) -> None:
    write_configs(services, import_bucket, 10)
    clock = FrozenClock()
    published: list[dramatiq.Message[Any]] = []
    replica = scheduler(services, redis_url, clock, published)
    replica.tick()
    assert len(published) == 10
    # When Redis is flushed mid-slot
    services.redis.flushdb()
    clock.advance(15)
    replica.tick()
    # Then the running scheduler publishes nothing again in the slot
    assert len(published) == 10
    # And every site's next slot is published once
    clock.advance(INTERVAL_S)
    replica.tick()
    assert len(published) == 20


@pytest.mark.slow(6)
def test_the_fleet_gauges_reread_only_the_status_shards_that_changed(
        services: Services, redis_url: str, import_bucket: str) -> None:
    # Given 200 sites with a recorded scan each, and a scheduler that keeps the fleet gauges
    write_configs(services, import_bucket, N_SITES)
    for i in range(N_SITES):
        services.fleet_status.record(f"site{i:04d}", SCAN_ACTOR,
                                     JobSummary(outcome="done", at="2026-01-01T00:00:00Z"))
    store = services.settings.store_bucket
    clock = FrozenClock()
    published: list[dramatiq.Message[Any]] = []
    replica = Scheduler(services.sites, counting_redis(redis_url), published.append, clock,
                        Metrics(), scan_interval_s=INTERVAL_S, export_interval_s=2 * INTERVAL_S,
                        fleet_status=services.fleet_status)
    replica.tick()  # the cold start reads every shard once
    # When it ticks for an interval with no change in the fleet
    ticks = INTERVAL_S // 15
    with s3_requests(store) as steady:
        for _ in range(ticks):
            clock.advance(15)
            replica.tick()
    # Then each refresh of the gauges was one listing of the summary, no shard read again
    refreshes = [r for r in steady.requests if f"prefix={FLEET_STATUS_PREFIX}" in r[1]]
    assert len(refreshes) == INTERVAL_S // FLEET_REFRESH_S
    assert len(steady) == ticks + len(refreshes)
    # And once one site's state changed, the next refresh reads that one shard
    services.fleet_status.record("site0007", SCAN_ACTOR,
                                 JobSummary(outcome="failed", at="2026-01-01T01:00:00Z",
                                            error="boom", error_at="2026-01-01T01:00:00Z"))
    with s3_requests(store) as after:
        clock.advance(FLEET_REFRESH_S)
        replica.tick()
    shard = services.fleet_status.docs.key(services.fleet_status.docs.shard_of("site0007"))
    assert [r[1].split("?")[0] for r in after.requests
            if r[1].split("?")[0].endswith(".json")] == [
                f"/{store}/index/sites/changed.json", f"/{store}/{shard}"]
