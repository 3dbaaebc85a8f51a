"""Everything a process that runs jobs needs, assembled once: services, broker, actors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from shared.exports.exporter import Exporter
from shared.imports.scan import Importer
from shared.services import Services
from shared.settings import Settings
from shared.store.ledger import ExportLedger
from workers.broker import build_broker, register_actors
from workers.export_job import ExportJob
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
        broker = build_broker(services.metrics, shutdown, services.redis, services.clock,
                              namespace=namespace)
        importer = Importer(services.store, services.tail_cache, services.clock, services.metrics)
        exporter = Exporter(services.store, ExportLedger(services.store_s3, settings.store_bucket),
                            services.tail_cache, services.clock, services.metrics)
        scan = ScanJob(services, importer, broker.enqueue,
                       shutdown_requested=lambda: shutdown.requested)
        export = ExportJob(services, exporter, broker.enqueue,
                           shutdown_requested=lambda: shutdown.requested)

        def scan_site(site_id: str) -> None:
            scan(site_id)

        def export_site(site_id: str, cutoff: str | None = None, first: int | None = None,
                        last: int | None = None, status_only: bool = False) -> None:
            export(site_id, cutoff=cutoff, first=first, last=last, status_only=status_only)

        actors = register_actors(broker, settings, scan_site, export_site)
        return cls(services=services, broker=broker, shutdown=shutdown, actors=actors)
