"""The scheduler against real Redis with a frozen clock: each (site, slot) is published once."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

import dramatiq
import pytest
import redis

from producers.scheduler import Published, Scheduler
from shared.clock import FrozenClock
from shared.fleet.messages import EXPORT_ACTOR, SCAN_ACTOR
from shared.fleet.slots import CLAIM_STALE_S, slot_of
from shared.metrics import Metrics
from shared.services import Services
from shared.store.sites import SiteConfig

pytestmark = pytest.mark.timeout(60)

SCAN_INTERVAL_S = 3600
EXPORT_INTERVAL_S = 7200


class Crashed(Exception):
    """A replica died between claiming a slot and publishing its message."""


def scheduler(services: Services, redis_url: str, clock: FrozenClock, publish: Any) -> Scheduler:
    """A replica with its own Redis connection, as a second pod would have."""
    return Scheduler(services.sites, redis.Redis.from_url(redis_url), publish, clock, Metrics(),
                     scan_interval_s=SCAN_INTERVAL_S, export_interval_s=EXPORT_INTERVAL_S)


def sent(messages: list[dramatiq.Message[Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.actor_name, m.args[0], m.kwargs) for m in messages]


def slot_start(site: str, interval_s: int, around_s: float) -> int:
    """The first whole second of the scan slot that ``around_s`` falls in (found by bisection)."""
    slot = slot_of(site, around_s, interval_s)
    low, high = int(around_s) - interval_s, int(around_s)  # slot_of(low) < slot == slot_of(high)
    while high - low > 1:
        mid = (low + high) // 2
        if slot_of(site, mid, interval_s) == slot:
            high = mid
        else:
            low = mid
    return high


@pytest.fixture
def sites(services: Services, import_bucket: str, export_bucket: str) -> list[SiteConfig]:
    """Five active sites (acme and dino export), and a paused exporting one."""
    configs = [
        SiteConfig(site_id=site_id, import_bucket=import_bucket, base_filename="accounts.csv",
                   export_bucket=export_bucket if site_id in {"acme", "dino"} else None)
        for site_id in ("acme", "beta", "cats", "dino", "emu")
    ]
    configs.append(SiteConfig(site_id="zzz-paused", import_bucket=import_bucket,
                              base_filename="accounts.csv", export_bucket=export_bucket,
                              paused=True))
    for config in configs:
        services.sites.create(config)
    return configs


EXPECTED_FIRST_TICK = sorted([
    (SCAN_ACTOR, "acme", {}), (EXPORT_ACTOR, "acme", {}), (SCAN_ACTOR, "beta", {}),
    (SCAN_ACTOR, "cats", {}), (SCAN_ACTOR, "dino", {}), (EXPORT_ACTOR, "dino", {}),
    (SCAN_ACTOR, "emu", {}),
])


def test_one_tick_publishes_a_scan_per_active_site_and_an_export_per_exporting_site(
        services: Services, redis_client: redis.Redis, redis_url: str,
        sites: list[SiteConfig]) -> None:
    # Given five active sites, two of them exporting, and a paused one
    clock = FrozenClock()
    published: list[dramatiq.Message[Any]] = []
    # When one replica ticks
    done = scheduler(services, redis_url, clock, published.append).tick()
    # Then each active site got a scan, each exporting site an export, the paused one nothing
    assert sorted(sent(published)) == EXPECTED_FIRST_TICK
    assert sorted(done, key=lambda p: (p.site, p.job)) == sorted([
        Published(job, site, slot_of(site, clock.now_s(),
                                     SCAN_INTERVAL_S if job == SCAN_ACTOR else EXPORT_INTERVAL_S))
        for job, site, _ in EXPECTED_FIRST_TICK], key=lambda p: (p.site, p.job))
    assert {m.queue_name for m in published if m.actor_name == SCAN_ACTOR} == {"imports"}
    assert {m.queue_name for m in published if m.actor_name == EXPORT_ACTOR} == {"exports"}


def test_two_replicas_ticking_alternately_publish_each_slot_once(
        services: Services, redis_client: redis.Redis, redis_url: str,
        sites: list[SiteConfig]) -> None:
    # Given two replicas sharing Redis and the clock
    clock = FrozenClock()
    published: list[dramatiq.Message[Any]] = []
    a = scheduler(services, redis_url, clock, published.append)
    b = scheduler(services, redis_url, clock, published.append)
    # When they tick in turn, several times within the same slots
    for _ in range(3):
        a.tick()
        clock.advance(1)
        b.tick()
        clock.advance(1)
    # Then every due message went out exactly once
    assert sorted(sent(published)) == EXPECTED_FIRST_TICK


def test_each_tick_logs_one_line_with_what_it_published_and_skipped(
        services: Services, redis_url: str, sites: list[SiteConfig],
        caplog: pytest.LogCaptureFixture) -> None:
    # Given two replicas sharing Redis and the clock
    clock = FrozenClock()
    a = scheduler(services, redis_url, clock, lambda _m: None)
    b = scheduler(services, redis_url, clock, lambda _m: None)
    caplog.set_level(logging.INFO, logger="producers.scheduler")
    # When the first publishes what is due and the second ticks in the same slots
    a.tick()
    b.tick()
    # Then each tick said in one line how many it published and skipped, of how many sites
    ticks = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tick:")]
    assert len(ticks) == 2
    assert ticks[0].startswith(f"tick: published {len(EXPECTED_FIRST_TICK)}, skipped 0 ")
    assert ticks[1].startswith(f"tick: published 0, skipped {len(EXPECTED_FIRST_TICK)} ")
    assert all(", 6 sites, " in t and t.endswith(" ms") for t in ticks)


def test_two_replicas_ticking_concurrently_publish_each_slot_once(
        services: Services, redis_client: redis.Redis, redis_url: str,
        sites: list[SiteConfig]) -> None:
    # Given two replicas in two threads, started together
    clock = FrozenClock()
    published: list[dramatiq.Message[Any]] = []
    replicas = [scheduler(services, redis_url, clock, published.append) for _ in range(2)]
    start = threading.Barrier(len(replicas))
    errors: list[BaseException] = []

    def run(replica: Scheduler) -> None:
        try:
            start.wait()
            for _ in range(5):
                replica.tick()
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in replicas]
    # When both tick at the same time, repeatedly
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    # Then every due message went out exactly once
    assert errors == []
    assert sorted(sent(published)) == EXPECTED_FIRST_TICK


def test_a_restarted_scheduler_does_not_publish_the_same_slot_again(
        services: Services, redis_client: redis.Redis, redis_url: str,
        sites: list[SiteConfig]) -> None:
    # Given a replica that published this slot's messages
    clock = FrozenClock()
    before: list[dramatiq.Message[Any]] = []
    scheduler(services, redis_url, clock, before.append).tick()
    assert sorted(sent(before)) == EXPECTED_FIRST_TICK
    # When it restarts (a new instance) later in the same slots
    clock.advance(30)
    after: list[dramatiq.Message[Any]] = []
    done = scheduler(services, redis_url, clock, after.append).tick()
    # Then it publishes nothing
    assert (after, done) == ([], [])


def test_scans_follow_the_scan_interval_and_exports_the_export_interval(
        services: Services, redis_client: redis.Redis, redis_url: str,
        sites: list[SiteConfig]) -> None:
    # Given a replica
    clock = FrozenClock()
    published: list[dramatiq.Message[Any]] = []
    replica = scheduler(services, redis_url, clock, published.append)
    # When it ticks every scan interval for four hours (plus extra ticks within each slot)
    for _ in range(5):
        replica.tick()
        clock.advance(60)
        replica.tick()
        clock.advance(SCAN_INTERVAL_S - 60)
    # Then each active site got a scan per hour, each exporting site an export per two hours
    # (five ticks one interval apart cross exactly four scan and two export slot boundaries,
    # whatever the site's offset)
    counts = Counter((actor, site) for actor, site, _ in sent(published))
    assert counts == {
        (SCAN_ACTOR, "acme"): 5, (SCAN_ACTOR, "beta"): 5, (SCAN_ACTOR, "cats"): 5,
        (SCAN_ACTOR, "dino"): 5, (SCAN_ACTOR, "emu"): 5,
        (EXPORT_ACTOR, "acme"): 3, (EXPORT_ACTOR, "dino"): 3,
    }


def test_the_next_slot_publishes_again(
        services: Services, redis_client: redis.Redis, redis_url: str,
        sites: list[SiteConfig]) -> None:
    # Given this slot's scans published
    clock = FrozenClock()
    published: list[dramatiq.Message[Any]] = []
    replica = scheduler(services, redis_url, clock, published.append)
    first = replica.tick()
    published.clear()
    # When the clock reaches the next scan slot
    clock.advance(SCAN_INTERVAL_S)
    second = replica.tick()
    # Then every active site's scan goes out again, for the following slot
    scans = sorted((p.site, p.slot) for p in second if p.job == SCAN_ACTOR)
    assert scans == sorted((p.site, p.slot + 1) for p in first if p.job == SCAN_ACTOR)
    assert sorted(s for a, s, _ in sent(published) if a == SCAN_ACTOR) == [
        "acme", "beta", "cats", "dino", "emu"]


def test_paused_sites_are_skipped_until_resumed(
        services: Services, redis_client: redis.Redis, redis_url: str,
        sites: list[SiteConfig]) -> None:
    # Given acme paused
    services.sites.set_paused("acme", True)
    clock = FrozenClock()
    published: list[dramatiq.Message[Any]] = []
    replica = scheduler(services, redis_url, clock, published.append)
    # When the scheduler ticks
    replica.tick()
    # Then acme gets nothing
    assert sorted(sent(published)) == [e for e in EXPECTED_FIRST_TICK if e[1] != "acme"]
    # And once resumed, it gets its messages at the next tick
    published.clear()
    services.sites.set_paused("acme", False)
    replica.tick()
    assert sorted(sent(published)) == [(EXPORT_ACTOR, "acme", {}), (SCAN_ACTOR, "acme", {})]


@pytest.fixture
def one_site(services: Services, import_bucket: str) -> SiteConfig:
    config = SiteConfig(site_id="acme", import_bucket=import_bucket,
                        base_filename="accounts.csv")
    services.sites.create(config)
    return config


def _crash(_message: dramatiq.Message[Any]) -> None:
    raise Crashed


def test_a_stale_claim_is_taken_over_and_published_in_the_same_slot(
        services: Services, redis_client: redis.Redis, redis_url: str,
        one_site: SiteConfig) -> None:
    # Given a replica that claimed acme's scan slot at its very start and died before publishing
    clock = FrozenClock(float(slot_start("acme", SCAN_INTERVAL_S, 1_700_000_000.0)))
    slot = slot_of("acme", clock.now_s(), SCAN_INTERVAL_S)
    with pytest.raises(Crashed):
        scheduler(services, redis_url, clock, _crash).tick()
    published: list[dramatiq.Message[Any]] = []
    a = scheduler(services, redis_url, clock, published.append)
    b = scheduler(services, redis_url, clock, published.append)
    # When the others tick while the claim is fresh
    clock.advance(CLAIM_STALE_S - 1)
    fresh = a.tick() + b.tick()
    # Then they leave it alone
    assert (fresh, published) == ([], [])
    # When they tick once the claim is stale, still in the same slot
    clock.advance(2)
    assert slot_of("acme", clock.now_s(), SCAN_INTERVAL_S) == slot
    stale = a.tick() + b.tick()
    # Then exactly one of them takes it over and publishes the slot: no slot is skipped
    assert stale == [Published(SCAN_ACTOR, "acme", slot)]
    assert sent(published) == [(SCAN_ACTOR, "acme", {})]
    # And nobody publishes it again later in the slot
    clock.advance(CLAIM_STALE_S * 2)
    assert a.tick() + b.tick() == []
    assert len(published) == 1


class ReadTogether(redis.Redis):
    """A replica's client whose first GET waits until every replica has reached its own: all of
    them then see the same stale claim before any acts on it."""

    barrier: threading.Barrier
    waited = False

    def get(self, name: Any) -> Any:
        if not self.waited:
            self.waited = True
            self.barrier.wait(timeout=10)
        return super().get(name)


def test_a_stale_claim_seen_by_several_replicas_at_once_is_published_once(
        services: Services, redis_client: redis.Redis, redis_url: str,
        one_site: SiteConfig) -> None:
    # Given a stale claim left by a crashed replica
    clock = FrozenClock(float(slot_start("acme", SCAN_INTERVAL_S, 1_700_000_000.0)))
    with pytest.raises(Crashed):
        scheduler(services, redis_url, clock, _crash).tick()
    clock.advance(CLAIM_STALE_S + 1)
    published: list[dramatiq.Message[Any]] = []
    barrier = threading.Barrier(4)
    replicas = []
    for _ in range(4):
        client = ReadTogether.from_url(redis_url)
        client.barrier = barrier
        replicas.append(Scheduler(services.sites, client, published.append, clock, Metrics(),
                                  scan_interval_s=SCAN_INTERVAL_S,
                                  export_interval_s=EXPORT_INTERVAL_S))
    results: list[list[Published]] = []
    # When four replicas read the stale claim before any of them takes it over
    threads = [threading.Thread(target=lambda r=r: results.append(r.tick())) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    # Then only one takes it over and publishes
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert sent(published) == [(SCAN_ACTOR, "acme", {})]
