"""The clients and stores a process needs, built once at its entry point and passed down.

Process wiring only: the entry points (``workers.app``, the CLI's commands) build one
``Services``; nothing in ``shared``'s packages imports this module (import-linter checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.clock import Clock, SystemClock
from shared.fleet.hints import RevisionTailCache
from shared.fleet.publisher import Publisher
from shared.fleet.redisconn import RedisClient, connect
from shared.metrics import Metrics
from shared.settings import Settings
from shared.store.access import SiteAccess
from shared.store.claims import ClaimStore
from shared.store.fleetstatus import FleetStatus
from shared.store.jobstatus import StatusStore
from shared.store.ledger import ExportLedger
from shared.store.reimportmarkers import MarkerStore
from shared.store.rejectreports import RejectReports
from shared.store.revisions import EventStore
from shared.store.s3 import S3, make_client
from shared.store.siteindex import SiteIndex
from shared.store.sites import SiteRegistry
from shared.store.sts import make_sts_client


@dataclass
class Services:
    settings: Settings
    redis: RedisClient
    store_s3: S3
    store: EventStore
    sites: SiteRegistry
    statuses: StatusStore
    ledger: ExportLedger
    reports: RejectReports
    markers: MarkerStore
    access: SiteAccess
    tail_cache: RevisionTailCache
    publisher: Publisher
    clock: Clock
    metrics: Metrics
    claims: ClaimStore
    fleet_status: FleetStatus
    index: SiteIndex

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None,
              metrics: Metrics | None = None, redis_client: RedisClient | None = None,
              s3: S3 | None = None) -> Services:
        clock = clock or SystemClock()
        r = redis_client or connect(settings.redis_url)
        store_s3 = s3 or S3(make_client(settings.s3_endpoint_url))
        bucket = settings.store_bucket
        store = EventStore(store_s3, bucket)
        index = SiteIndex(store_s3, bucket)
        sites = SiteRegistry(store_s3, bucket, on_change=index.refresh)
        return cls(
            settings=settings, redis=r, store_s3=store_s3, store=store,
            sites=sites, statuses=StatusStore(store_s3, bucket),
            ledger=ExportLedger(store_s3, bucket), reports=RejectReports(store_s3, bucket, store),
            markers=MarkerStore(store_s3, bucket),
            access=SiteAccess(store_s3, make_sts_client, clock, settings.s3_endpoint_url),
            tail_cache=RevisionTailCache(r, bucket), publisher=Publisher.for_redis(r),
            clock=clock, metrics=metrics or Metrics(),
            claims=ClaimStore(store_s3, bucket, sites, clock),
            fleet_status=FleetStatus(store_s3, bucket), index=index)
