"""The clients and stores a process needs, built once at its entry point and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from redis import Redis

from shared.clock import Clock, SystemClock
from shared.fleet.hints import RevisionTailCache
from shared.metrics import Metrics
from shared.settings import Settings
from shared.store.access import SiteAccess
from shared.store.jobstatus import StatusStore
from shared.store.revisions import EventStore
from shared.store.s3 import S3, make_client
from shared.store.sites import SiteRegistry

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient


@dataclass
class Services:
    settings: Settings
    redis: Redis
    store_s3: S3
    store: EventStore
    sites: SiteRegistry
    statuses: StatusStore
    access: SiteAccess
    tail_cache: RevisionTailCache
    clock: Clock
    metrics: Metrics

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None,
              metrics: Metrics | None = None, redis_client: Redis | None = None,
              s3: S3 | None = None) -> Services:
        clock = clock or SystemClock()
        r = redis_client or Redis.from_url(settings.redis_url, socket_timeout=10,
                                           socket_connect_timeout=5, health_check_interval=30)
        store_s3 = s3 or S3(make_client(settings.s3_endpoint_url))
        # botocore honours AWS_ENDPOINT_URL_STS itself, as it does AWS_ENDPOINT_URL_S3.
        session = boto3.session.Session()
        sts: STSClient = session.client("sts", region_name=session.region_name or "us-east-1")
        return cls(
            settings=settings, redis=r, store_s3=store_s3,
            store=EventStore(store_s3, settings.store_bucket),
            sites=SiteRegistry(store_s3, settings.store_bucket),
            statuses=StatusStore(store_s3, settings.store_bucket),
            access=SiteAccess(store_s3, sts, clock, settings.s3_endpoint_url),
            tail_cache=RevisionTailCache(r, settings.store_bucket), clock=clock,
            metrics=metrics or Metrics())

