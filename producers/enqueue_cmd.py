"""``bucketbridge enqueue …``: send a message by hand (reprocessing).

A paused site's messages would be acked without work, so enqueueing for it is refused unless
``--even-if-paused`` (then the message runs although the site stays paused; its continuations,
if any, wait for ``sites resume``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from producers.context import AppContext
from producers.output import HelpGroup, print_json
from producers.params import bounded_int
from shared.errors import UserError
from shared.exports.cutoff import parse_cutoff
from shared.formats.exportfiles import export_location
from shared.formats.names import validate_site_id

# The message definitions import dramatiq and the site store boto3: each command imports them
# when it runs, so that its --help and its usage errors cost nothing.
if TYPE_CHECKING:
    from shared.store.sites import SiteConfig

# Revision numbers are written with 12 digits (``sites/<site>/revisions/<n:012d>.json``).
MAX_REVISION = 10**12 - 1

pass_app = click.make_pass_decorator(AppContext)

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print the queued message as JSON.")
paused_option = click.option("--even-if-paused", is_flag=True,
                             help="Queue it although the site is paused (it runs once).")


def _site(app: AppContext, site: str, even_if_paused: bool) -> SiteConfig:
    config = app.services.sites.get(validate_site_id(site))
    if config.paused and not even_if_paused:
        raise UserError(f"site {site} is paused: its messages would do nothing (bucketbridge "
                        "sites resume, or pass --even-if-paused)")
    return config


def _queued(message: Any, text: str, as_json: bool) -> None:
    if as_json:
        print_json({"message_id": message.message_id, "actor": message.actor_name,
                    "queue": message.queue_name, "site": message.args[0],
                    "kwargs": dict(message.kwargs)})
    else:
        click.echo(f"{text} (message {message.message_id})")


@click.group(cls=HelpGroup)
def enqueue() -> None:
    """Send a scan, export or re-export message now."""


@enqueue.command("scan")
@click.argument("site")
@paused_option
@json_option
@pass_app
def enqueue_scan(app: AppContext, site: str, even_if_paused: bool, as_json: bool) -> None:
    """Queue an import run for one site."""
    from shared.fleet.messages import scan_message

    _site(app, site, even_if_paused)
    message = app.services.publisher.publish(scan_message(site, even_if_paused=even_if_paused))
    _queued(message, f"queued scan {site}", as_json)


@enqueue.command("export")
@click.argument("site")
@click.option("--cutoff", default="yesterday", show_default=True,
              help="Export revisions written before this: yesterday, now or ISO 8601.")
@paused_option
@json_option
@pass_app
def enqueue_export(app: AppContext, site: str, cutoff: str, even_if_paused: bool,
                   as_json: bool) -> None:
    """Queue an export cycle for one site."""
    from shared.fleet.messages import export_message

    parsed = parse_cutoff(cutoff)
    config = _site(app, site, even_if_paused)
    if not config.exports:
        raise UserError(f"site {site} has no export bucket")
    message = app.services.publisher.publish(
        export_message(site, cutoff=parsed, even_if_paused=even_if_paused))
    _queued(message, f"queued export {site}", as_json)


@enqueue.command("reexport")
@click.argument("site")
@click.option("--from", "first", type=bounded_int(1, MAX_REVISION), required=True,
              help="First revision to export again.")
@click.option("--to", "last", type=bounded_int(1, MAX_REVISION), default=None,
              help="Last revision (default: the last exported one).")
@paused_option
@json_option
@pass_app
def enqueue_reexport(app: AppContext, site: str, first: int, last: int | None,
                     even_if_paused: bool, as_json: bool) -> None:
    """Export a range of revisions again, on purpose."""
    from shared.fleet.messages import export_message

    if last is not None and last < first:
        raise UserError(f"--to {last} is before --from {first}")
    svc = app.services
    config = _site(app, site, even_if_paused)
    if not config.exports:
        raise UserError(f"site {site} has no export bucket")
    position = svc.ledger.load(site, export_location(config.export_bucket or "",
                                                     config.export_prefix)).position
    if first > position:
        raise UserError(f"site {site} has exported revisions up to {position} only; "
                        f"--from {first} would re-export nothing")
    message = svc.publisher.publish(export_message(site, first=first, last=last,
                                                   even_if_paused=even_if_paused))
    span = f"{first}..{last}" if last else f"{first}.."
    _queued(message, f"queued re-export {site} revisions {span}", as_json)
