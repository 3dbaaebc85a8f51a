"""The metrics endpoint of a worker pod: one HTTP server summing every worker process's metrics.

``bucketbridge worker`` runs it as a dramatiq fork process beside the worker processes; it reads
the multiprocess directory they all write to.
"""

from __future__ import annotations

import logging
import os
import threading

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from shared.logconfig import configure_logging
from shared.settings import Settings

logger = logging.getLogger(__name__)


def multiprocess_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    return registry


def serve() -> int:
    """Serve ``/metrics`` on ``BUCKETBRIDGE_METRICS_PORT`` until the process is terminated."""
    settings = Settings.from_env()
    configure_logging(log_format=settings.log_format, force=True)
    start_http_server(settings.metrics_port, registry=multiprocess_registry())
    logger.info("metrics served on port %d", settings.metrics_port)
    threading.Event().wait()
    return 0
