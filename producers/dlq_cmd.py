"""``bucketbridge dlq list | requeue [ID…|--all] | purge``: manual reprocessing of messages that
failed all their retries."""

from __future__ import annotations

import sys

import click
import orjson
from rich.table import Table

from producers.context import AppContext
from producers.output import console
from shared.errors import UserError
from shared.fleet.deadletters import DeadLetterQueue
from shared.fleet.messages import QUEUES

pass_app = click.make_pass_decorator(AppContext)


def _queue(app: AppContext) -> DeadLetterQueue:
    return DeadLetterQueue(app.services.redis, QUEUES)


@click.group()
def dlq() -> None:
    """Inspect, requeue or purge dead-lettered messages."""


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_letters(app: AppContext, as_json: bool) -> None:
    """Show each dead letter: id, actor, site, error, when."""
    letters = _queue(app).letters()
    if as_json:
        click.echo(orjson.dumps([d.as_json() for d in letters]).decode())
        return
    if not letters:
        click.echo("no dead-lettered messages")
        return
    table = Table()
    for name in ("ID", "Queue", "Actor", "Site", "Arguments", "Dead since", "Error"):
        table.add_column(name, overflow="fold")
    for d in letters:
        extra = ", ".join(f"{k}={v}" for k, v in d.kwargs.items())
        table.add_row(d.id, d.queue, d.actor, d.site or "-", extra or "-", d.dead_at,
                      d.error or "(not recorded)")
    console().print(table)


@dlq.command("requeue")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Requeue every dead letter.")
@pass_app
def requeue(app: AppContext, ids: tuple[str, ...], everything: bool) -> None:
    """Send dead letters again as fresh messages (ids or unique id prefixes)."""
    if bool(ids) == everything:
        raise UserError("name dead letters by id, or pass --all (not both)")
    queue = _queue(app)
    try:
        letters = queue.letters() if everything else queue.resolve(ids)
    except KeyError as exc:
        raise UserError(f"no single dead letter matches id {exc.args[0]!r} "
                         "(see bucketbridge dlq list)") from None
    sent = queue.requeue(letters, app.services.publisher.publish)
    for letter, message in zip(letters, sent, strict=True):
        click.echo(f"requeued {letter.actor} {letter.site or ''} as message "
                   f"{message.message_id}")
    click.echo(f"{len(sent)} message(s) requeued")


@dlq.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def purge(app: AppContext, yes: bool) -> None:
    """Drop every dead letter for good."""
    queue = _queue(app)
    count = len(queue.letters())
    if count and not yes:
        if not sys.stdin.isatty():
            raise UserError("confirmation needed: run in a terminal or pass --yes")
        click.confirm(f"Drop {count} dead-lettered message(s) for good?", abort=True)
    click.echo(f"{queue.purge()} dead-lettered message(s) purged")
