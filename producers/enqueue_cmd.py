"""``bucketbridge enqueue …``: send a message by hand (reprocessing)."""

from __future__ import annotations

import click

from producers.context import AppContext
from shared.errors import UserError
from shared.exports.cutoff import parse_cutoff
from shared.fleet.messages import export_message, scan_message
from shared.formats.names import validate_site_id

pass_app = click.make_pass_decorator(AppContext)


@click.group()
def enqueue() -> None:
    """Send a scan, export or re-export message now."""


@enqueue.command("scan")
@click.argument("site")
@pass_app
def enqueue_scan(app: AppContext, site: str) -> None:
    """Queue an import run for one site."""
    svc = app.services
    svc.sites.get(validate_site_id(site))
    message = svc.publisher.publish(scan_message(site))
    click.echo(f"queued scan {site} (message {message.message_id})")


@enqueue.command("export")
@click.argument("site")
@click.option("--cutoff", default="yesterday", show_default=True,
              help="Export revisions written before this: yesterday, now or ISO 8601.")
@pass_app
def enqueue_export(app: AppContext, site: str, cutoff: str) -> None:
    """Queue an export cycle for one site."""
    parsed = parse_cutoff(cutoff)
    svc = app.services
    config = svc.sites.get(validate_site_id(site))
    if not config.exports:
        raise UserError(f"site {site} has no export bucket")
    message = svc.publisher.publish(export_message(site, cutoff=parsed))
    click.echo(f"queued export {site} (message {message.message_id})")


@enqueue.command("reexport")
@click.argument("site")
@click.option("--from", "first", type=click.IntRange(min=1), required=True,
              help="First revision to export again.")
@click.option("--to", "last", type=click.IntRange(min=1), default=None,
              help="Last revision (default: the last exported one).")
@pass_app
def enqueue_reexport(app: AppContext, site: str, first: int, last: int | None) -> None:
    """Export a range of revisions again, on purpose."""
    if last is not None and last < first:
        raise UserError(f"--to {last} is before --from {first}")
    svc = app.services
    config = svc.sites.get(validate_site_id(site))
    if not config.exports:
        raise UserError(f"site {site} has no export bucket")
    position = svc.ledger.load(site).position
    if first > position:
        raise UserError(f"site {site} has exported revisions up to {position} only; "
                         f"--from {first} would re-export nothing")
    message = svc.publisher.publish(export_message(site, first=first, last=last))
    span = f"{first}..{last}" if last else f"{first}.."
    click.echo(f"queued re-export {site} revisions {span} (message {message.message_id})")
