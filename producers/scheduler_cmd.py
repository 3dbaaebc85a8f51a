"""``bucketbridge scheduler [--once]``."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import asdict
from types import FrameType

import click
import orjson
from prometheus_client import start_http_server

from producers.context import AppContext
from producers.scheduler import Scheduler
from shared.preflight import require_guarantees

pass_app = click.make_pass_decorator(AppContext)


def build_scheduler(app: AppContext) -> Scheduler:
    svc = app.services
    return Scheduler(svc.sites, svc.redis, svc.publisher.publish, svc.clock, svc.metrics,
                     scan_interval_s=app.settings.scan_interval_s,
                     export_interval_s=app.settings.export_interval_s,
                     fleet_status=svc.fleet_status,
                     attention_sites=app.settings.attention_sites)


@click.command()
@click.option("--once", is_flag=True, help="Publish what is due now and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print what was published "
              "as JSON.")
@pass_app
def scheduler(app: AppContext, once: bool, as_json: bool) -> None:
    """Publish the scan and export messages that are due."""
    sched = build_scheduler(app)
    if once:
        published = sched.tick()
        if as_json:
            click.echo(orjson.dumps([asdict(p) for p in published]).decode())
            return
        for p in published:
            click.echo(f"published {p.job} {p.site} (slot {p.slot})")
        click.echo(f"{len(published)} message(s) published")
        return
    svc = app.services
    require_guarantees(svc.store_s3, app.settings.store_bucket, svc.redis, svc.clock,
                       "scheduler")  # before it serves metrics or publishes anything
    # A long-running service logs what it does (INFO), like the workers; -v still adds DEBUG.
    root = logging.getLogger()
    root.setLevel(min(root.level, logging.INFO))
    server, _ = start_http_server(app.settings.metrics_port,
                                  registry=app.services.metrics.registry)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo(f"scheduler running; metrics on :{server.server_port}", err=True)
    sched.run(stop)
