"""The scheduler: publishes each site's ``scan`` and ``export`` message once per time slot.

Slots are ``floor((now + offset) / interval)``, with a per-site offset that spreads sites over
the interval.  A slot is claimed in Redis before its message is published and marked published
after, so two replicas never both publish it, and a replica that dies between claim and publish
leaves a stale claim that the next tick takes over instead of skipping the slot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq

from producers.fleetgauges import DEFAULT_ATTENTION_SITES, FleetGauges
from producers.fleetview import fleet_health
from shared.clock import Clock
from shared.errors import RetryableError
from shared.fleet.messages import EXPORT_ACTOR, QUEUES, SCAN_ACTOR, export_message, scan_message
from shared.fleet.queues import queue_depths
from shared.fleet.redisconn import RedisClient
from shared.fleet.slots import CLAIM_STALE_S, DEFAULT_PREFIX, SlotClaims, slot_of
from shared.metrics import Metrics
from shared.store.fleetstatus import FleetStatus
from shared.store.sites import SiteConfig, SiteRegistry

logger = logging.getLogger(__name__)

TICK_INTERVAL_S = 15.0
# How often the fleet gauges are recomputed from the fleet status summary.
FLEET_REFRESH_S = 300.0


@dataclass(frozen=True)
class Published:
    job: str
    site: str
    slot: int


class Scheduler:
    def __init__(self, sites: SiteRegistry, client: RedisClient,
                 publish: Callable[[dramatiq.Message[Any]], Any], clock: Clock,
                 metrics: Metrics, *, scan_interval_s: int, export_interval_s: int,
                 key_prefix: str = DEFAULT_PREFIX,
                 broker_namespace: str = "dramatiq", fleet_status: FleetStatus | None = None,
                 attention_sites: int = DEFAULT_ATTENTION_SITES) -> None:
        self.broker_namespace = broker_namespace
        self.sites = sites
        self.redis = client
        self.publish = publish
        self.clock = clock
        self.metrics = metrics
        self.scan_interval_s = scan_interval_s
        self.export_interval_s = export_interval_s
        self.slots = SlotClaims(client, key_prefix)
        self.fleet_status = fleet_status
        self.gauges = FleetGauges(metrics, attention_sites)
        self.fleet_refreshed_s: float | None = None

    def _due(self, job: str, site: SiteConfig, interval_s: int,
             message: dramatiq.Message[Any]) -> Published | None:
        slot = slot_of(site.site_id, self.clock.now_s(), interval_s)
        key = self.slots.key(job, site.site_id, slot)
        ttl_s = interval_s * 2 + CLAIM_STALE_S
        if not self.slots.claim(key, self.clock.now_s(), ttl_s):
            return None
        self.publish(message)
        self.slots.published(key, ttl_s)
        self.metrics.scheduler_published.labels(job).inc()
        logger.info("site=%s published %s for slot %d", site.site_id, job, slot)
        return Published(job, site.site_id, slot)

    def tick(self) -> list[Published]:
        """Publish every message that is due now; returns what this replica published.  Also
        records the queues' depths, which the fleet's autoscaling and alerts watch."""
        out: list[Published] = []
        configs: dict[str, SiteConfig | str] = {}
        for site in self.sites.all():
            configs[site.site_id] = site
            if site.paused:
                continue
            done = self._due(SCAN_ACTOR, site, self.scan_interval_s, scan_message(site.site_id))
            if done:
                out.append(done)
            if site.exports:
                done = self._due(EXPORT_ACTOR, site, self.export_interval_s,
                                 export_message(site.site_id))
                if done:
                    out.append(done)
        self._observe_queues()
        self._observe_fleet(configs)
        self.metrics.scheduler_last_tick.set(self.clock.now_s())
        return out

    def _observe_fleet(self, configs: dict[str, SiteConfig | str]) -> None:
        """Recompute the fleet gauges every ``FLEET_REFRESH_S`` (best effort)."""
        now_s = self.clock.monotonic_s()
        if self.fleet_status is None or (self.fleet_refreshed_s is not None
                                         and now_s - self.fleet_refreshed_s < FLEET_REFRESH_S):
            return
        try:
            summaries = list(self.fleet_status.read_all())
        except RetryableError as exc:
            logger.warning("fleet status summary unreadable, gauges kept: %s", exc)
            return
        self.gauges.publish(fleet_health(configs, summaries))
        self.fleet_refreshed_s = now_s

    def _observe_queues(self) -> None:
        for depth in queue_depths(self.redis, QUEUES, self.broker_namespace):
            gauge = self.metrics.queue_messages
            gauge.labels(depth.queue, "ready").set(depth.ready)
            gauge.labels(depth.queue, "delayed").set(depth.delayed)
            gauge.labels(depth.queue, "dead").set(depth.dead)

    def run(self, stop: threading.Event, tick_interval_s: float = TICK_INTERVAL_S) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                # A failed tick (Redis or S3 away) is retried on the next one.
                logger.exception("scheduler tick failed")
            stop.wait(tick_interval_s)
