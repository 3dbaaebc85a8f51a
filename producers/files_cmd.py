"""``bucketbridge files …``: work with the files customers receive from the export.

INPUT is a local file or directory, or ``s3://BUCKET/KEY`` or ``s3://BUCKET/PREFIX``.  A
directory or prefix means its revision files ``<n>.json`` / ``<n>.json.gz`` (or those of its
``revisions/``) in numeric order.  Results go to standard output or to ``-o PATH``.  Inputs are
never changed.  A malformed line is reported on stderr (file, line number, reason) and skipped;
with ``--strict`` the first one ends the run with exit status 2.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from producers.context import AppContext
from producers.files_io import Feedback, output
from producers.output import HelpGroup
from shared.errors import RetryableError, UserError
from shared.filetools.aliases import filter_identity
from shared.filetools.convert import compile_lines, split_aliases, to_json_array
from shared.filetools.csvout import to_csv
from shared.filetools.daily import day_lines, day_window, index_of, input_paths, overlapping
from shared.filetools.sources import (
    Input,
    ObjectReader,
    ReaderFactory,
    resolve_input,
    resolve_root,
)
from shared.formats.exportlines import Problems
from shared.formats.names import validate_site_id

pass_app = click.make_pass_decorator(AppContext)
F = TypeVar("F", bound=Callable[..., Any])


class ReimportStopped(RetryableError):
    """The reimport was interrupted; running the same command again continues it."""


def _s3_factory(app: AppContext) -> ReaderFactory:
    """Builds the S3 client the first time an ``s3://`` location needs it (a local input
    never loads boto3)."""
    built: list[ObjectReader] = []

    def make() -> ObjectReader:
        if not built:
            from shared.store.s3 import S3, make_client

            built.append(S3(make_client(app.settings.s3_endpoint_url)))
        return built[0]

    return make


def _input(app: AppContext, text: str) -> Input:
    return resolve_input(text, _s3_factory(app))


def strict_option(f: F) -> F:
    return click.option("--strict", is_flag=True,
                        help="Stop at the first malformed line, with exit status 2.")(f)


def output_option(f: F) -> F:
    return click.option("-o", "--output", "output_path", metavar="PATH", default=None,
                        help="Write to PATH (replaced only if the command succeeds) instead "
                             "of standard output.")(f)


@click.group(cls=HelpGroup)
def files() -> None:
    """Work with exported files: revisions/<n>.json, index.csv.

    SOURCE is a file or a directory, or s3://BUCKET/KEY or s3://BUCKET/PREFIX.  A directory or
    prefix means its <n>.json and <n>.json.gz files (or those in its revisions/), in numeric
    order.  Inputs are never changed.  A malformed line is reported on stderr and skipped;
    with --strict the first one ends the run with exit status 2."""


@files.command("compile")
@click.argument("source")
@output_option
@strict_option
@pass_app
def compile_cmd(app: AppContext, source: str, output_path: str | None, strict: bool) -> None:
    """Join the revision files of SOURCE into one NDJSON file, in numeric order."""
    inp = _input(app, source)
    with Feedback() as fb, output(output_path, inp.local_paths()) as out:
        count = compile_lines(inp, out, Problems(strict, fb.problem),
                              fb.task("compiling", inp.total_bytes))
        fb.note(f"{count} lines from {len(inp.parts)} file(s)")


@files.command("to-json")
@click.argument("source")
@output_option
@strict_option
@pass_app
def to_json_cmd(app: AppContext, source: str, output_path: str | None, strict: bool) -> None:
    """Write the lines of SOURCE as one standard JSON array."""
    inp = _input(app, source)
    with Feedback() as fb, output(output_path, inp.local_paths()) as out:
        count = to_json_array(inp, out, Problems(strict, fb.problem),
                              fb.task("converting", inp.total_bytes))
        fb.note(f"{count} lines")


@files.command("to-csv")
@click.argument("source")
@output_option
@click.option("--raw", is_flag=True,
              help="Do not neutralise values a spreadsheet would run as formulas.")
@strict_option
@pass_app
def to_csv_cmd(app: AppContext, source: str, output_path: str | None, raw: bool,
               strict: bool) -> None:
    """Write the lines of SOURCE as CSV: _p, _p2, _t, _n, then properties in first-seen order.

    Text starting with = + - @, a tab or a CR gets a leading ' (unless --raw)."""
    inp = _input(app, source)
    with Feedback() as fb, output(output_path, inp.local_paths()) as out:
        count = to_csv(inp, out, Problems(strict, fb.problem), raw,
                       fb.task("collecting columns", inp.total_bytes),
                       fb.task("writing rows", inp.total_bytes))
        fb.note(f"{count} rows")


@files.command("split-aliases")
@click.argument("source")
@click.option("--aliases", "aliases_path", required=True, metavar="PATH",
              help="Where the alias lines (with _p2) go.")
@click.option("--others", "others_path", required=True, metavar="PATH",
              help="Where every other line goes.")
@strict_option
@pass_app
def split_aliases_cmd(app: AppContext, source: str, aliases_path: str, others_path: str,
                      strict: bool) -> None:
    """Write the alias lines of SOURCE to one file and the other lines to another."""
    if "-" in (aliases_path, others_path):
        raise UserError("--aliases and --others name files; standard output cannot take both")
    if aliases_path == others_path:
        raise UserError("--aliases and --others must be two different files")
    inp = _input(app, source)
    with (Feedback() as fb, output(aliases_path, inp.local_paths()) as aliases,
          output(others_path, inp.local_paths()) as others):
        counts = split_aliases(inp, aliases, others, Problems(strict, fb.problem),
                               fb.task("splitting", inp.total_bytes))
        fb.note(f"{counts.aliases} alias lines, {counts.others} other lines")


@files.command("filter-identity")
@click.argument("source")
@click.option("--identity", required=True, help="The person whose lines to keep.")
@output_option
@strict_option
@pass_app
def filter_identity_cmd(app: AppContext, source: str, identity: str, output_path: str | None,
                        strict: bool) -> None:
    """Write the lines of one person: IDENTITY and every identity aliased to it, transitively."""
    inp = _input(app, source)
    with Feedback() as fb, output(output_path, inp.local_paths()) as out:
        result = filter_identity(inp, identity, out, Problems(strict, fb.problem),
                                 fb.task("following aliases", inp.total_bytes),
                                 fb.task("filtering", inp.total_bytes))
        fb.note(f"{result.lines} lines for {len(result.identities)} identities")


@files.command("day")
@click.argument("root")
@click.option("--date", "on", metavar="YYYY-MM-DD", default=None, help="One UTC day.")
@click.option("--from", "first", metavar="YYYY-MM-DD", default=None,
              help="First UTC day of a range.")
@click.option("--to", "last", metavar="YYYY-MM-DD", default=None,
              help="Last UTC day of a range (inclusive).")
@output_option
@strict_option
@pass_app
def day_cmd(app: AppContext, root: str, on: str | None, first: str | None, last: str | None,
            output_path: str | None, strict: bool) -> None:
    """Write the events of given UTC days from an export (ROOT holds index.csv).

    Only the revision files whose timestamp range in index.csv overlaps the days are read."""
    window = day_window(on, first, last)
    location = resolve_root(root, _s3_factory(app))
    with Feedback() as fb:
        problems = Problems(strict, fb.problem)
        entries = overlapping(index_of(location, problems), window)
        with output(output_path, input_paths(location, entries)) as out:
            result = day_lines(location, entries, window, out, problems,
                               fb.task(f"reading {window}", len(entries), unit="files"))
        fb.note(f"{result.lines} lines of {window} from {len(result.files)} file(s)")


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM ask the reimport to stop at its next commit instead of killing it."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda _s, _f: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@files.command("reimport")
@click.argument("site")
@click.argument("file")
@strict_option
@pass_app
def reimport_cmd(app: AppContext, site: str, file: str, strict: bool) -> None:
    """Import the lines of FILE into SITE's event store, exactly once (a rerun continues).

    Holds the site's import lease while it writes; lines keep their _t."""
    from shared.errors import RedisUnavailable
    from shared.fleet.messages import scan_message
    from shared.fleet.notices import Notices
    from shared.imports.reimport import Reimporter, ReimportOutcome, check_file

    svc = app.services
    svc.sites.get(validate_site_id(site))
    inp = _input(app, file)
    one = inp.only_file()
    reimporter = Reimporter(svc.store, svc.reports, svc.markers, svc.redis, svc.tail_cache,
                            svc.clock, svc.metrics)
    notices = Notices(svc.redis, app.settings.notify_pending_ttl_s)
    seen = notices.events_seen(site)
    try:
        with Feedback() as fb:
            checked = check_file(one, Problems(strict, fb.problem),
                                 fb.task("checking", inp.total_bytes))
            with _stop_on_signals() as stop:
                result = reimporter.run(site, one, checked, should_stop=stop.is_set,
                                        on_bytes=fb.task("importing", inp.total_bytes))
    finally:
        # A file announced while the reimport held the lease: its scan found the site busy.
        try:
            if notices.follow_up(site, seen,
                                 lambda: svc.publisher.publish(scan_message(site))):
                click.echo(f"notifications arrived for site {site} meanwhile: a scan is "
                           "queued", err=True)
        except RedisUnavailable as exc:  # the hourly scan remains the safety net
            click.echo(f"could not check notifications for site {site}: {exc}", err=True)
    span = (f"revisions {result.first_revision}..{result.last_revision}"
            if result.last_revision is not None else "no revision (no valid line)")
    if result.outcome is ReimportOutcome.STOPPED:
        raise ReimportStopped(f"reimport of {checked.name} stopped before line "
                              f"{result.next_line}; run the same command again to continue")
    if result.outcome is ReimportOutcome.ALREADY:
        click.echo(f"{checked.name} was reimported into site {site} already ({span}); "
                   "nothing to do")
        return
    click.echo(f"reimported {result.lines_imported} lines of {checked.name} into site {site}: "
               f"{span} ({checked.file_id})")
