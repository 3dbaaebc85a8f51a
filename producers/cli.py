"""``bucketbridge``: the operator CLI.  Command names and options are a public interface.

Exit status: 0 on success, 2 on bad usage or input (``UserError``), 1 on other failures.
Errors are one line on stderr; a user mistake never prints a traceback.

Each command's module is imported only when that command runs: ``bucketbridge --help`` or
``bucketbridge files …`` never pay for boto3, redis or dramatiq they do not use.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from producers.context import AppContext
from shared.errors import BucketbridgeError, UserError
from shared.formats.printable import printable
from shared.logconfig import configure_logging
from shared.settings import Settings

EXIT_FAILURE = 1
EXIT_USAGE = 2
# click >= 8.2 raises it for a group run without a command (older versions print the help).
_NO_ARGS_IS_HELP: type[click.UsageError] = getattr(click.exceptions, "NoArgsIsHelpError",
                                                   type("_NeverRaised", (click.UsageError,), {}))

# name -> (module:attribute, the summary ``--help`` shows without importing the module); a
# test checks each summary against the command's own.
COMMANDS: dict[str, tuple[str, str]] = {
    "sites": ("producers.sites_cmd:sites", "Register and manage sites."),
    "enqueue": ("producers.enqueue_cmd:enqueue",
                "Send a scan, export or re-export message now."),
    "scheduler": ("producers.scheduler_cmd:scheduler",
                  "Publish the scan and export messages that are due."),
    "worker": ("producers.worker_cmd:worker",
               "Run worker processes; options go to dramatiq, such as --processes 2 --threads 4."),
    "drain": ("producers.drain_cmd:drain",
              "Process queued messages in this process until none is left, then exit."),
    "status": ("producers.status_cmd:status",
               "What a site is doing now: running, queued, next runs, progress, errors, export."),
    "dlq": ("producers.dlq_cmd:dlq", "Inspect, requeue or delete dead-lettered messages."),
    "files": ("producers.files_cmd:files",
              "Work with exported files: revisions/<n>.json, index.csv."),
    "check": ("producers.check_cmd:check",
              "Check that the store enforces conditional writes, Redis evicts nothing, and the "
              "clock agrees with the store's."),
    "listen": ("producers.listen_cmd:listen",
               "Turn S3 object-created events into scans within seconds."),
    "demo": ("producers.demo:demo", "Run the whole flow on an embedded S3 endpoint, for a "
                                    "first look."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when they run, and whose errors become one line
    on stderr with the documented exit status."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target[0].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            _fail(str(exc), EXIT_USAGE)
        except BucketbridgeError as exc:
            _fail(str(exc), EXIT_FAILURE)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """click's main, with its own errors as one line too: a usage error is the message
        and the ``--help`` to read, not click's Usage/Try/Error block."""
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS_IS_HELP as exc:  # a group run without a command: its help
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "bucketbridge"
            _fail(f"{_sentence(exc.format_message())} (see: {where} --help)", EXIT_USAGE)
        except click.ClickException as exc:
            _fail(_sentence(exc.format_message()), exc.exit_code)
        except click.Abort:
            _fail("aborted", EXIT_FAILURE)
        except BucketbridgeError as exc:  # raised while settings were parsed
            _fail(str(exc), EXIT_USAGE if isinstance(exc, UserError) else EXIT_FAILURE)
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            # The reader went away (``| head``): stop quietly, as click does.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_FAILURE)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def _sentence(message: str) -> str:
    """click's message as one of ours: one line, lower case, no full stop."""
    text = " ".join(message.split()).rstrip(".")
    return text[:1].lower() + text[1:]


def _fail(message: str, code: int) -> None:
    click.echo(f"bucketbridge: error: {printable(message)}", err=True)
    sys.exit(code)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail (and tracebacks).")
@click.version_option(package_name="bucketbridge", prog_name="bucketbridge",
                      message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Move event data between the store and customers' S3 buckets."""
    settings = Settings.from_env()
    configure_logging(logging.DEBUG if verbose else logging.WARNING, settings.log_format)
    ctx.obj = AppContext(settings=settings, verbose=verbose)


def main() -> None:
    cli.main(prog_name="bucketbridge")
