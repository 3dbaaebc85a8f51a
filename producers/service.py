"""The long-running control-plane processes (scheduler, listener): INFO logs like the workers'
(``-v`` still adds DEBUG), a metrics endpoint, and a clean stop on SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

import click
from prometheus_client import CollectorRegistry, start_http_server


def serve(banner: str, metrics_port: int, registry: CollectorRegistry,
          run: Callable[[threading.Event], None]) -> None:
    """Serve ``registry`` on ``metrics_port``, say ``banner`` with the port bound, and
    ``run(stop)`` until a signal sets ``stop``."""
    root = logging.getLogger()
    root.setLevel(min(root.level, logging.INFO))
    server, _ = start_http_server(metrics_port, registry=registry)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo(f"{banner}; metrics on :{server.server_port}", err=True)
    run(stop)
