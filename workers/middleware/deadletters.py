"""Writes down why a message was dead-lettered, for ``bucketbridge dlq list``."""

from __future__ import annotations

import logging
from typing import Any

from dramatiq.middleware import Middleware

from shared.clock import Clock
from shared.errors import RedisUnavailable
from shared.fleet.deadletters import record_failure
from shared.fleet.redisconn import RedisClient

logger = logging.getLogger(__name__)


class DeadLetterNotes(Middleware):
    def __init__(self, client: RedisClient, namespace: str, clock: Clock) -> None:
        self.client = client
        self.namespace = namespace
        self.clock = clock

    def after_nack(self, broker: Any, message: Any) -> None:
        site = message.args[0] if message.args else None
        logger.error("site=%s message=%s actor=%s dead-lettered", site, message.message_id,
                     message.actor_name)
        try:
            record_failure(self.client, self.namespace, message, self.clock.now_s())
        except RedisUnavailable as exc:
            logger.warning("message=%s could not record why it failed: %s", message.message_id,
                           exc)
