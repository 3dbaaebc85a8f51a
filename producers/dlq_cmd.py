"""``bucketbridge dlq list | show | requeue | delete | purge``: messages that failed all their
retries, found by the message id ``enqueue`` printed and the worker logged."""

from __future__ import annotations

import sys

import click

from producers.context import AppContext
from producers.output import HelpGroup, print_json, print_table
from shared.errors import UserError
from shared.fleet.deadletters import DeadLetter, DeadLetterQueue, NoSuchLetter
from shared.fleet.messages import QUEUES
from shared.formats.printable import printable

pass_app = click.make_pass_decorator(AppContext)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
site_option = click.option("--site", default=None, help="Only the dead letters of this site.")
actor_option = click.option("--actor", type=click.Choice(["scan", "export"]), default=None,
                            help="Only the dead letters of this actor.")


def _queue(app: AppContext) -> DeadLetterQueue:
    return DeadLetterQueue(app.services.redis, QUEUES)


def _arguments(letter: DeadLetter) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in letter.kwargs.items())
    return extra or "-"


def _resolve(queue: DeadLetterQueue, ids: tuple[str, ...]) -> list[DeadLetter]:
    try:
        return queue.resolve(ids)
    except NoSuchLetter as exc:
        raise UserError(f"no single dead letter matches id {exc.args[0]!r} "
                        "(see bucketbridge dlq list)") from None


@click.group(cls=HelpGroup)
def dlq() -> None:
    """Inspect, requeue or delete dead-lettered messages."""


@dlq.command("list")
@site_option
@actor_option
@json_option
@pass_app
def list_letters(app: AppContext, site: str | None, actor: str | None, as_json: bool) -> None:
    """Show each dead letter: message id, actor, site, arguments, error, when."""
    letters = _queue(app).letters(site=site, actor=actor)
    if as_json:
        print_json([d.as_json() for d in letters])
        return
    if not letters:
        click.echo("no dead-lettered messages")
        return
    print_table(("ID", "Actor", "Site", "Arguments", "Attempts", "Dead since", "Error"),
                [(d.id, d.actor, d.site or "-", _arguments(d), len(d.attempts), d.dead_at,
                  d.error or "(not recorded)") for d in letters])


@dlq.command("show")
@click.argument("message_id")
@json_option
@pass_app
def show(app: AppContext, message_id: str, as_json: bool) -> None:
    """Everything about one dead letter: arguments, every attempt's error, the traceback."""
    letter = _resolve(_queue(app), (message_id,))[0]
    if as_json:
        print_json(letter.as_json(with_tracebacks=True))
        return
    lines = [("message", letter.id), ("actor", f"{letter.actor} (queue {letter.queue})"),
             ("site", letter.site or "-"), ("arguments", _arguments(letter)),
             ("enqueued", letter.enqueued_at), ("dead since", letter.dead_at),
             ("attempts", str(len(letter.attempts)))]
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        click.echo(printable(f"{name:>{width}}: {value}"))
    for number, attempt in enumerate(letter.attempts, start=1):
        where = f" on {attempt.worker}" if attempt.worker else ""
        click.echo(printable(f"{'attempt ' + str(number):>{width}}: {attempt.at}{where}: "
                             f"{attempt.error}"))
    if letter.traceback:
        click.echo("traceback of the last attempt:")
        for line in letter.traceback.rstrip().splitlines():
            click.echo(printable(line))
    click.echo(f"requeue with: bucketbridge dlq requeue {letter.id}")


@dlq.command("requeue")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True,
              help="Requeue every dead letter (or every one of --site / --actor).")
@site_option
@actor_option
@json_option
@pass_app
def requeue(app: AppContext, ids: tuple[str, ...], everything: bool, site: str | None,
            actor: str | None, as_json: bool) -> None:
    """Send dead letters again, with their original arguments and message id."""
    if bool(ids) == everything:
        raise UserError("name dead letters by id, or pass --all (not both)")
    if ids and (site or actor):
        raise UserError("--site and --actor select with --all, not with ids")
    queue = _queue(app)
    letters = queue.letters(site=site, actor=actor) if everything else _resolve(queue, ids)
    sent = queue.requeue(letters, app.services.publisher.publish)
    if as_json:
        print_json([{"id": m.message_id, "actor": m.actor_name, "queue": m.queue_name,
                     "args": list(m.args), "kwargs": dict(m.kwargs)} for m in sent])
        return
    for message in sent:
        site_id = message.args[0] if message.args else ""
        extra = ", ".join(f"{k}={v}" for k, v in message.kwargs.items())
        click.echo(f"requeued {message.actor_name} {site_id}{f' ({extra})' if extra else ''} "
                   f"as message {message.message_id}")
    click.echo(f"{len(sent)} message(s) requeued")


@dlq.command("delete")
@click.argument("ids", nargs=-1, required=True)
@json_option
@pass_app
def delete(app: AppContext, ids: tuple[str, ...], as_json: bool) -> None:
    """Drop the named dead letters for good (ids or unique id prefixes)."""
    queue = _queue(app)
    letters = _resolve(queue, ids)
    count = queue.delete(letters)
    if as_json:
        print_json({"deleted": [d.id for d in letters]})
        return
    for letter in letters:
        click.echo(f"deleted {letter.actor} {letter.site or ''} message {letter.id}")
    click.echo(f"{count} dead-lettered message(s) deleted")


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
