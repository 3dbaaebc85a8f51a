"""Writes down every failed attempt of a message, for ``bucketbridge dlq show``, and says so
in the log under the message id ``enqueue`` printed."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from dramatiq.middleware import Middleware

from shared.clock import Clock
from shared.errors import RedisUnavailable
from shared.fleet.deadletters import NO_ACTOR_ERROR, Attempt, has_attempts, record_attempt
from shared.fleet.leases import worker_name
from shared.fleet.redisconn import RedisClient
from shared.formats.times import iso_utc

logger = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    """``Type: message``, the one line an operator reads first."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class DeadLetterNotes(Middleware):
    def __init__(self, client: RedisClient, namespace: str, clock: Clock) -> None:
        self.client = client
        self.namespace = namespace
        self.clock = clock

    def _record(self, message: Any, attempt: Attempt) -> None:
        try:
            record_attempt(self.client, self.namespace, message.message_id, attempt)
        except RedisUnavailable as exc:
            logger.warning("message=%s could not record why it failed: %s", message.message_id,
                           exc)

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        if exception is None:
            return
        trace = "".join(traceback.format_exception(exception))
        self._record(message, Attempt(at=iso_utc(self.clock.now_s()), error=describe(exception),
                                      traceback=trace, worker=worker_name()))

    def after_nack(self, broker: Any, message: Any) -> None:
        site = message.args[0] if message.args else None
        logger.error("site=%s message=%s actor=%s dead-lettered (bucketbridge dlq show %s)",
                     site, message.message_id, message.actor_name, message.message_id,
                     extra={"site": site, "message_id": message.message_id,
                            "job_kind": message.actor_name})
        try:
            recorded = has_attempts(self.client, self.namespace, message.message_id)
        except RedisUnavailable:
            return
        if not recorded:  # never ran: no actor of that name in this worker
            self._record(message, Attempt(at=iso_utc(self.clock.now_s()),
                                          error=NO_ACTOR_ERROR.format(actor=message.actor_name),
                                          worker=worker_name()))
