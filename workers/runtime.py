"""Everything a process that runs jobs needs, assembled once: services, broker, actors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from shared.exports.exporter import Exporter
from shared.fleet.publisher import Publisher
from shared.imports.scan import Importer
from shared.services import Services
from shared.settings import Settings
from workers.broker import build_broker, register_actors
from workers.jobs.export import ExportJob
from workers.jobs.scan import ScanJob
from workers.middleware.shutdown import GracefulShutdown


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
        importer = Importer(services.store, services.reports, services.tail_cache, services.clock,
                            services.metrics, read_limits=settings.read_limits,
                            csv_engine=settings.csv_engine)
        exporter = Exporter(services.store, services.ledger, services.tail_cache,
                            services.clock, services.metrics)
        publish = Publisher(broker).publish
        scan = ScanJob(services, importer, publish, shutdown_requested=lambda: shutdown.requested)
        export = ExportJob(services, exporter, publish,
                           shutdown_requested=lambda: shutdown.requested)

        # The actors return nothing (dramatiq has no result backend here); how a run ended is
        # in ``workers.jobs.base.last_run()`` for the middleware that reports it.
        def scan_site(site_id: str, even_if_paused: bool = False) -> None:
            scan(site_id, even_if_paused=even_if_paused)

        def export_site(site_id: str, cutoff: str | None = None, first: int | None = None,
                        last: int | None = None, status_only: bool = False,
                        even_if_paused: bool = False) -> None:
            export(site_id, cutoff=cutoff, first=first, last=last, status_only=status_only,
                   even_if_paused=even_if_paused)

        actors = register_actors(broker, settings, scan_site, export_site)
        return cls(services=services, broker=broker, shutdown=shutdown, actors=actors)
