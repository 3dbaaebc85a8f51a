"""Everything a process that runs jobs needs, assembled once: services, broker, actors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from shared.importer import Importer
from shared.services import Services
from shared.settings import Settings
from workers.broker import build_broker, register_actors
from workers.scan_job import ScanJob
from workers.shutdown import GracefulShutdown


@dataclass
class Runtime:
    services: Services
    broker: RedisBroker
    shutdown: GracefulShutdown
    actors: dict[str, dramatiq.Actor[Any, Any]]

    @classmethod
    def build(cls, services: Services, namespace: str = "dramatiq") -> Runtime:
        """``namespace`` prefixes the broker's Redis keys (the demo keeps its own)."""
        settings: Settings = services.settings
        shutdown = GracefulShutdown()
        broker = build_broker(settings, services.metrics, shutdown, client=services.redis,
                              namespace=namespace)
        importer = Importer(services.store, services.tail_cache, services.clock, services.metrics)
        scan = ScanJob(services, importer, shutdown_requested=lambda: shutdown.requested)

        def scan_site(site_id: str) -> None:
            scan(site_id)

        actors = register_actors(broker, settings, scan_site)
        return cls(services=services, broker=broker, shutdown=shutdown, actors=actors)
