"""``bucketbridge``: the operator CLI.  Command names and options are a public interface.

Exit status: 0 on success, 2 on bad usage or input, 1 on other failures.  Errors are one line
on stderr; a user mistake never prints a traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from producers.context import AppContext
from shared.errors import BucketbridgeError, UserError
from shared.logconfig import configure_logging
from shared.settings import Settings

EXIT_FAILURE = 1
EXIT_USAGE = 2


class UserFacingGroup(click.Group):
    """Turns bucketbridge's errors into one line on stderr and the documented exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            _fail(str(exc), EXIT_USAGE)
        except BucketbridgeError as exc:
            _fail(str(exc), EXIT_FAILURE)


def _fail(message: str, code: int) -> None:
    click.echo(f"bucketbridge: error: {message}", err=True)
    sys.exit(code)


@click.group(cls=UserFacingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Move event data between the store and customers' S3 buckets."""
    configure_logging(logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = AppContext(settings=Settings.from_env())


def _register() -> None:
    from producers.demo import demo
    from producers.dlq_cmd import dlq
    from producers.drain_cmd import drain
    from producers.enqueue_cmd import enqueue
    from producers.files_cmd import files
    from producers.scheduler_cmd import scheduler
    from producers.sites_cmd import sites
    from producers.status_cmd import status
    from producers.worker_cmd import worker

    for command in (sites, enqueue, scheduler, worker, drain, status, dlq, files, demo):
        cli.add_command(command)


_register()


def main() -> None:
    # click reports its own usage errors with exit status 2; everything else is ours.
    try:
        cli.main(prog_name="bucketbridge", standalone_mode=True)
    except BucketbridgeError as exc:  # raised while settings were parsed, before a command ran
        code = EXIT_USAGE if isinstance(exc, UserError) else EXIT_FAILURE
        click.echo(f"bucketbridge: error: {exc}", err=True)
        sys.exit(code)
