"""The broker set-up shared by the worker processes and the in-process ``drain``."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from shared.clock import Clock
from shared.errors import RetryableError
from shared.fleet.deadletters import NOTE_TTL_S
from shared.fleet.messages import EXPORT_ACTOR, EXPORT_QUEUE, IMPORT_QUEUE, SCAN_ACTOR
from shared.fleet.redisconn import RedisClient
from shared.metrics import Metrics
from shared.settings import Settings
from workers.middleware.context import MessageLogContext
from workers.middleware.deadletters import DeadLetterNotes
from workers.middleware.metrics import MessageMetrics
from workers.middleware.shutdown import GracefulShutdown

MAX_RETRIES = 5
MIN_BACKOFF_MS = 15_000
MAX_BACKOFF_MS = 600_000
# Dead-lettered messages stay a week for operators to inspect and requeue.
DEAD_MESSAGE_TTL_MS = NOTE_TTL_S * 1000


def retry_when(retries: int, exc: BaseException) -> bool:
    """Retry only what may succeed later; anything else is dead-lettered at once."""
    return isinstance(exc, RetryableError) and retries < MAX_RETRIES


def build_broker(metrics: Metrics, shutdown: GracefulShutdown, client: RedisClient,
                 clock: Clock, namespace: str = "dramatiq") -> RedisBroker:
    middleware = [AgeLimit(), TimeLimit(), ShutdownNotifications(), Callbacks(), Pipelines(),
                  Retries(retry_when=retry_when, min_backoff=MIN_BACKOFF_MS,
                          max_backoff=MAX_BACKOFF_MS),
                  CurrentMessage(), MessageLogContext(), MessageMetrics(metrics),
                  DeadLetterNotes(client, namespace, clock), shutdown]
    broker = RedisBroker(client=client, middleware=middleware, namespace=namespace,
                         dead_message_ttl=DEAD_MESSAGE_TTL_MS)
    broker.declare_queue(IMPORT_QUEUE)
    broker.declare_queue(EXPORT_QUEUE)
    return broker


def register_actors(broker: RedisBroker, settings: Settings, scan: Any,
                    export: Any) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Bind the job callables to actor names on ``broker``."""
    return {
        SCAN_ACTOR: dramatiq.Actor(
            scan, broker=broker, actor_name=SCAN_ACTOR, queue_name=IMPORT_QUEUE, priority=0,
            options={"time_limit": settings.import_time_limit_ms, "max_retries": MAX_RETRIES}),
        EXPORT_ACTOR: dramatiq.Actor(
            export, broker=broker, actor_name=EXPORT_ACTOR, queue_name=EXPORT_QUEUE, priority=0,
            options={"time_limit": settings.export_time_limit_ms, "max_retries": MAX_RETRIES}),
    }
