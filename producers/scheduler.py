"""The scheduler: publishes each site's ``scan`` and ``export`` message once per time slot.

Slots are ``floor((now + offset) / interval)``, with a per-site offset that spreads sites over
the interval.  A slot is claimed in Redis before its message is published and marked published
after, so two replicas never both publish it, and a replica that dies between claim and publish
leaves a stale claim that the next tick takes over instead of skipping the slot.

A tick costs what is due, not what is registered: the site configurations come from the site
index (``IndexCache``: one S3 request when nothing changed), and each (job, site) waits in a
heap until its next slot begins, so a tick looks only at the sites whose slot began since the
last one and claims their slots in pipelined Redis round trips.  A site that is added, changed
or resumed is looked at on the tick that sees the change.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq

from producers.fleetgauges import DEFAULT_ATTENTION_SITES, FleetGauges
from producers.fleetview import fleet_health
from producers.indexcache import IndexCache
from shared.clock import Clock
from shared.errors import RetryableError
from shared.fleet.messages import EXPORT_ACTOR, QUEUES, SCAN_ACTOR, export_message, scan_message
from shared.fleet.queues import queue_depths
from shared.fleet.redisconn import RedisClient
from shared.fleet.slots import (
    CLAIM_STALE_S,
    DEFAULT_PREFIX,
    Claim,
    SlotClaims,
    slot_of,
    slot_start_s,
)
from shared.metrics import Metrics
from shared.store.fleetstatus import FleetStatus
from shared.store.shards import Shard
from shared.store.siteindex import IndexedSite, SiteIndex
from shared.store.sites import SiteConfig, SiteRegistry

logger = logging.getLogger(__name__)

TICK_INTERVAL_S = 15.0
# How often the fleet gauges are recomputed from the fleet status summary.
FLEET_REFRESH_S = 300.0
JOBS = (SCAN_ACTOR, EXPORT_ACTOR)


@dataclass(frozen=True)
class Published:
    job: str
    site: str
    slot: int


def _wanted(config: IndexedSite | None, job: str) -> SiteConfig | None:
    """The configuration, if ``job`` is to be scheduled for it."""
    if not isinstance(config, SiteConfig) or config.paused:
        return None
    if job == EXPORT_ACTOR and not config.exports:
        return None
    return config


class Scheduler:
    def __init__(self, sites: SiteRegistry, client: RedisClient,
                 publish: Callable[[dramatiq.Message[Any]], Any], clock: Clock,
                 metrics: Metrics, *, scan_interval_s: int, export_interval_s: int,
                 key_prefix: str = DEFAULT_PREFIX,
                 broker_namespace: str = "dramatiq", fleet_status: FleetStatus | None = None,
                 attention_sites: int = DEFAULT_ATTENTION_SITES) -> None:
        self.broker_namespace = broker_namespace
        self.index = IndexCache(SiteIndex(sites.s3, sites.bucket))
        self.redis = client
        self.publish = publish
        self.clock = clock
        self.metrics = metrics
        self.intervals_s = {SCAN_ACTOR: scan_interval_s, EXPORT_ACTOR: export_interval_s}
        self.slots = SlotClaims(client, key_prefix)
        self.fleet_status = fleet_status
        self.gauges = FleetGauges(metrics, attention_sites)
        self.fleet_refreshed_s: float | None = None
        self.configs: dict[str, IndexedSite] = {}
        # (when to look again, job, site): each (job, site) at least once, and again at the
        # start of its next slot; looking at one whose slot was handled costs nothing.
        self.due: list[tuple[float, str, str]] = []
        self.handled: dict[tuple[str, str], int] = {}
        self.fleet_shards: dict[int, Shard] = {}  # the summary's shards, kept by ETag
        self.skipped = 0  # in the last tick: slots published already or held by another replica

    def tick(self) -> list[Published]:
        """Publish every message that is due now; returns what this replica published.  Also
        records the queues' depths, which the fleet's autoscaling and alerts watch."""
        started_s = self.clock.monotonic_s()
        now_s = self.clock.now_s()
        self._follow_index(now_s)
        self.skipped = 0
        out = self._publish_due(now_s)
        self._observe_queues()
        self._observe_fleet()
        self.metrics.scheduler_last_tick.set(self.clock.now_s())
        logger.info("tick: published %d, skipped %d (published already or by another replica), "
                    "%d sites, %.0f ms", len(out), self.skipped, len(self.configs),
                    (self.clock.monotonic_s() - started_s) * 1000)
        return out

    def _follow_index(self, now_s: float) -> None:
        if not self.index.refresh():
            return
        fresh = self.index.sites
        for site, config in fresh.items():
            before = self.configs.get(site)
            if config == before:
                continue
            if isinstance(config, str):
                logger.error("site=%s skipped: %s", site, config)
                self.metrics.site_configs_skipped.inc()
                continue
            for job in JOBS:
                if _wanted(config, job) is not None:
                    heapq.heappush(self.due, (now_s, job, site))
        for site in self.configs.keys() - fresh.keys():
            for job in JOBS:
                self.handled.pop((job, site), None)
        self.configs = fresh

    def _publish_due(self, now_s: float) -> list[Published]:
        looked: set[tuple[str, str]] = set()
        candidates: list[tuple[str, str, int]] = []
        while self.due and self.due[0][0] <= now_s:
            _, job, site = heapq.heappop(self.due)
            if (job, site) in looked or _wanted(self.configs.get(site), job) is None:
                continue  # a paused or removed site is pushed again when it changes
            looked.add((job, site))
            interval_s = self.intervals_s[job]
            slot = slot_of(site, now_s, interval_s)
            if self.handled.get((job, site), -1) >= slot:
                self._next_slot(job, site, slot)
                self.skipped += 1
                continue
            candidates.append((job, site, slot))
        candidates.sort(key=lambda c: (c[1], JOBS.index(c[0])))  # a site's scan, then export
        out: list[Published] = []
        done: list[tuple[str, int]] = []
        settled: set[tuple[str, str]] = set()
        try:
            keys = [(self.slots.key(job, site, slot), self._ttl_s(job))
                    for job, site, slot in candidates]
            results = self.slots.claim_many(keys, now_s)
            for (job, site, slot), key, result in zip(candidates, keys, results, strict=True):
                if result.claim is not Claim.CLAIMED:
                    self.skipped += 1
                if result.claim is Claim.HELD:
                    # another replica is publishing it; look again once its claim is stale
                    held_s = result.held_since_s or now_s
                    heapq.heappush(self.due, (held_s + CLAIM_STALE_S, job, site))
                    settled.add((job, site))
                    continue
                if result.claim is Claim.CLAIMED:
                    self.publish(_message(job, site))
                    done.append(key)
                    self.metrics.scheduler_published.labels(job).inc()
                    logger.info("site=%s published %s for slot %d", site, job, slot)
                    out.append(Published(job, site, slot))
                self.handled[(job, site)] = slot
                self._next_slot(job, site, slot)
                settled.add((job, site))
        finally:
            self.slots.published_many(done)
            for job, site, _slot in candidates:
                if (job, site) not in settled:
                    # not finished (Redis or the broker failed): looked at again next tick
                    heapq.heappush(self.due, (now_s, job, site))
        return out

    def _next_slot(self, job: str, site: str, slot: int) -> None:
        interval_s = self.intervals_s[job]
        heapq.heappush(self.due, (slot_start_s(site, slot + 1, interval_s), job, site))

    def _ttl_s(self, job: str) -> int:
        return self.intervals_s[job] * 2 + CLAIM_STALE_S

    def _observe_queues(self) -> None:
        for depth in queue_depths(self.redis, QUEUES, self.broker_namespace):
            gauge = self.metrics.queue_messages
            gauge.labels(depth.queue, "ready").set(depth.ready)
            gauge.labels(depth.queue, "delayed").set(depth.delayed)
            gauge.labels(depth.queue, "dead").set(depth.dead)

    def _observe_fleet(self) -> None:
        """Recompute the fleet gauges every ``FLEET_REFRESH_S`` (best effort)."""
        now_s = self.clock.monotonic_s()
        if self.fleet_status is None or (self.fleet_refreshed_s is not None
                                         and now_s - self.fleet_refreshed_s < FLEET_REFRESH_S):
            return
        try:
            summaries = list(self.fleet_status.read_all(self.fleet_shards))
        except RetryableError as exc:
            logger.warning("fleet status summary unreadable, gauges kept: %s", exc)
            return
        self.gauges.publish(fleet_health(self.configs, summaries))
        self.fleet_refreshed_s = now_s

    def run(self, stop: threading.Event, tick_interval_s: float = TICK_INTERVAL_S) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                # A failed tick (Redis or S3 away) is retried on the next one.
                logger.exception("scheduler tick failed")
            stop.wait(tick_interval_s)


def _message(job: str, site: str) -> dramatiq.Message[Any]:
    return scan_message(site) if job == SCAN_ACTOR else export_message(site)
