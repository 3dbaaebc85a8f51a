"""``bucketbridge drain``: process queued messages in this process until none is left."""

from __future__ import annotations

import time

import click
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name
from dramatiq.errors import QueueJoinTimeout

from producers.context import AppContext
from shared.errors import RetryableError
from shared.fleet.messages import QUEUES
from shared.fleet.redisconn import check
from workers.runtime import Runtime

pass_app = click.make_pass_decorator(AppContext)


class DrainTimeout(RetryableError):
    """Messages were still queued when the drain's time ran out."""


def drain_queues(broker: RedisBroker, timeout_s: float | None, worker_threads: int = 2) -> None:
    """Run a worker on ``broker`` until every queue (delayed retries included) is empty.

    dramatiq attaches a worker to its broker for good: call this once per broker."""
    worker = dramatiq.Worker(broker, worker_threads=worker_threads, worker_timeout=100)
    worker.start()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while True:
            for queue in QUEUES:
                for name in (queue, dq_name(queue)):
                    left_ms = None if deadline is None else \
                        max(1, int((deadline - time.monotonic()) * 1000))
                    broker.join(name, timeout=left_ms)
            # A message may have been queued while we waited on another queue: check again.
            if all(broker.do_qsize(q) == 0 and broker.do_qsize(dq_name(q)) == 0
                   for q in QUEUES):
                break
        worker.join()
    except QueueJoinTimeout:
        raise DrainTimeout(f"messages still queued after {timeout_s:g}s") from None
    finally:
        worker.stop()


@click.command()
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=None,
              help="Give up (exit 1) if the queues are not empty after S seconds.")
@click.option("--threads", type=click.IntRange(min=1, max=32), default=2, show_default=True)
@pass_app
def drain(app: AppContext, timeout_s: float | None, threads: int) -> None:
    """Process queued messages in this process until none is left, then exit."""
    check(app.services.redis)  # fail with one line before dramatiq's threads start logging
    runtime = Runtime.build(app.services)
    metrics = app.services.metrics
    drain_queues(runtime.broker, timeout_s, worker_threads=threads)
    handled = sum(sample.value for family in metrics.messages.collect()
                  for sample in family.samples if sample.name.endswith("_total"))
    click.echo(f"drained: {int(handled)} message(s) processed, queues empty")
