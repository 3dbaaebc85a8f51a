"""``bucketbridge drain``: process queued messages in this process until none is left.

Exit status 1 when any message it ran failed (raised, or could not do its work: a missing
bucket, a blocked export) or was dead-lettered, with one line per failure on stderr; the
traceback only with ``-v``.  Ctrl-C (or SIGTERM) stops it like a worker: the messages in hand
checkpoint and return, their continuations and the messages not started stay queued.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click

from producers.context import AppContext
from producers.drain import DrainEnd, DrainTimeout, Progress, drain_queues, pending
from producers.output import print_json
from producers.params import Seconds
from shared.fleet.redisconn import check
from shared.formats.printable import printable
from workers.middleware.outcomes import MessageOutcome, MessageOutcomes, MessageState
from workers.runtime import Runtime

pass_app = click.make_pass_decorator(AppContext)

EXIT_FAILED = 1
MAX_DRAIN_TIMEOUT_S = 7 * 86400.0


@contextmanager
def _stop_on_signals(stop: threading.Event, runtime: Runtime) -> Iterator[None]:
    """The first Ctrl-C or SIGTERM asks the jobs in hand to checkpoint and the drain to stop;
    a second Ctrl-C aborts at once."""
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        runtime.shutdown.request()
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        click.echo(f"{signal.Signals(signum).name}: stopping after the message(s) in hand "
                   "checkpoint (Ctrl-C again to abort)", err=True)

    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be handled in the main thread (the CLI runner in tests)
        return
    before = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


@contextmanager
def _quiet_unless(verbose: bool) -> Iterator[None]:
    """Failures are summed up at the end, one line each: the workers' and dramatiq's own
    lines (tracebacks) only with -v."""
    loggers = [logging.getLogger(name) for name in ("dramatiq", "workers")]
    levels = [logger.level for logger in loggers]
    if not verbose:
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class _ProgressLine:
    """``drain: 3 done, 1 failed, 5 queued; in hand: scan acme`` on a terminal's stderr."""

    def __init__(self, outcomes: MessageOutcomes) -> None:
        self.outcomes = outcomes
        self.status: Any = None
        if sys.stderr.isatty():
            from rich.console import Console

            self.status = Console(stderr=True).status("drain: starting")

    def __enter__(self) -> _ProgressLine:
        if self.status is not None:
            self.status.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.status is not None:
            self.status.stop()

    def update(self, progress: Progress) -> None:
        if self.status is None:
            return
        done = self.outcomes.outcomes()
        failed = sum(1 for o in done if o.failed)
        hand = ", ".join(f"{actor} {site or ''}".strip() for actor, site in
                         self.outcomes.in_hand()) or "-"
        self.status.update(f"drain: {len(done) - failed} done, {failed} failed, "
                           f"{progress.queued} queued; in hand: {hand}")


def _failure_line(o: MessageOutcome) -> str:
    what = f"{o.actor} {o.site or '-'}"
    why = o.error or o.outcome or "failed"
    if o.state is MessageState.DEAD:
        return (f"bucketbridge: dead-lettered: {what}: {why} (message {o.message_id}; "
                f"bucketbridge dlq show {o.message_id})")
    if o.state is MessageState.RETRYING:
        return f"bucketbridge: failed, retry pending: {what}: {why} (message {o.message_id})"
    return f"bucketbridge: failed: {what}: {o.outcome}: {why} (message {o.message_id})"


@click.command()
@click.option("--timeout", "timeout_s", type=Seconds(0.1, MAX_DRAIN_TIMEOUT_S), default=None,
              help="Give up (exit 1) if the queues are not empty after S seconds.")
@click.option("--threads", type=click.IntRange(min=1, max=32), default=2, show_default=True,
              help="Worker threads: messages processed at once.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the outcome of every message as JSON.")
@pass_app
def drain(app: AppContext, timeout_s: float | None, threads: int, as_json: bool) -> None:
    """Process queued messages in this process until none is left, then exit."""
    check(app.services.redis)  # fail with one line before dramatiq's threads start logging
    runtime = Runtime.build(app.services)
    outcomes = MessageOutcomes()
    runtime.broker.add_middleware(outcomes)
    stop = threading.Event()
    timed_out: DrainTimeout | None = None
    with _quiet_unless(app.verbose), _stop_on_signals(stop, runtime), \
            _ProgressLine(outcomes) as line:
        try:
            end = drain_queues(runtime.broker, timeout_s, worker_threads=threads, stop=stop,
                               on_progress=line.update)
        except DrainTimeout as exc:
            timed_out, end = exc, DrainEnd.STOPPED
    done = outcomes.outcomes()
    failures = [o for o in done if o.failed]
    left = pending(runtime.broker)
    if as_json:
        print_json({"processed": len(done), "failed": len(failures), "queued": left,
                    "ended": "timeout" if timed_out else str(end),
                    "messages": [o.as_json() for o in done]})
    for failure in failures:
        click.echo(printable(_failure_line(failure)), err=True)
    if timed_out is not None:
        raise timed_out
    if end is DrainEnd.STOPPED:
        if not as_json:
            click.echo(f"drain stopped: {len(done)} message(s) processed, {len(failures)} "
                       f"failed; the message(s) in hand checkpointed, {left} left queued")
        sys.exit(EXIT_FAILED)
    if not as_json:
        summary = f", {len(failures)} failed" if failures else ""
        click.echo(f"drained: {len(done)} message(s) processed{summary}, queues empty")
    if failures:
        sys.exit(EXIT_FAILED)
