"""Running a dramatiq worker in this process until the queues are empty, or time runs out, or
someone asks it to stop (``bucketbridge drain``, the demo)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from shared.errors import RetryableError
from shared.fleet.messages import QUEUES
from shared.fleet.redisconn import translated

POLL_S = 0.1


class DrainTimeout(RetryableError):
    """Messages were still queued when the drain's time ran out."""


class DrainEnd(StrEnum):
    EMPTY = "empty"  # every queue is empty, delayed retries included
    STOPPED = "stopped"  # asked to stop: the messages in hand checkpointed, the rest wait


@dataclass(frozen=True)
class Progress:
    queued: int  # messages waiting or in flight, retries included


def pending(broker: RedisBroker) -> int:
    """Messages of every queue not acknowledged yet: ready, delayed for a retry, in flight."""
    with translated("reading queue sizes"):
        return sum(int(broker.do_qsize(queue)) for queue in QUEUES)


def drain_queues(broker: RedisBroker, timeout_s: float | None, worker_threads: int = 2,
                 stop: threading.Event | None = None,
                 on_progress: Callable[[Progress], None] = lambda _p: None) -> DrainEnd:
    """Run a worker on ``broker`` until every queue (delayed retries included) is empty, or
    ``stop`` is set (then the worker finishes the messages in hand, which checkpoint when the
    runtime's shutdown was requested, and puts back those it had fetched).

    The actors' time limits hold as in a worker process: the middleware is booted as
    ``dramatiq`` boots a worker process (dramatiq's time limit watchdog starts only then), so a
    message past its ``time_limit`` is stopped here too.

    dramatiq attaches a worker to its broker for good: call this once per broker."""
    stop = stop or threading.Event()
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=worker_threads, worker_timeout=100)
    worker.start()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while not stop.is_set():
            left = pending(broker)
            on_progress(Progress(queued=left))
            if left == 0:
                worker.join()  # nothing left anywhere; let the worker threads settle
                if pending(broker) == 0:
                    return DrainEnd.EMPTY
            if deadline is not None and time.monotonic() >= deadline:
                raise DrainTimeout(f"messages still queued after {timeout_s:g}s")
            stop.wait(POLL_S)
        return DrainEnd.STOPPED
    finally:
        worker.stop()
