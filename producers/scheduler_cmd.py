"""``bucketbridge scheduler [--once]``."""

from __future__ import annotations

from dataclasses import asdict

import click
import orjson

from producers.context import AppContext
from producers.scheduler import Scheduler
from producers.service import serve
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
    serve("scheduler running", app.settings.metrics_port, svc.metrics.registry, sched.run)
