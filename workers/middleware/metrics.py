"""Broker-level Prometheus metrics: messages processed, failed, retried, dead-lettered, in flight.

The same measurements as dramatiq's own Prometheus middleware, with durations in seconds and
names from ``shared.metrics``, so every exported name passes ``promtool check metrics``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from dramatiq.middleware import Middleware

from shared.metrics import Metrics


class MessageMetrics(Middleware):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._started: dict[str, float] = {}

    @staticmethod
    def _labels(message: Any) -> tuple[str, str]:
        return message.queue_name.removesuffix(".DQ"), message.actor_name

    def before_process_message(self, broker: Any, message: Any) -> None:
        self.metrics.messages_inprogress.labels(*self._labels(message)).inc()
        self._started[message.message_id] = time.monotonic()

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        labels = self._labels(message)
        started = self._started.pop(message.message_id, None)
        if started is not None:
            self.metrics.message_duration.labels(*labels).observe(time.monotonic() - started)
            self.metrics.messages_inprogress.labels(*labels).dec()
        self.metrics.messages.labels(*labels).inc()
        if exception is not None:
            self.metrics.message_errors.labels(*labels).inc()

    after_skip_message = after_process_message

    def after_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        # A retry is enqueued twice: with its delay, then again when it falls due.
        if delay is not None and "retries" in message.options:
            self.metrics.message_retries.labels(*self._labels(message)).inc()

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        # In-flight gauges of a process that is gone must not count any more.
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())

    def after_nack(self, broker: Any, message: Any) -> None:
        self.metrics.message_dead_lettered.labels(*self._labels(message)).inc()
