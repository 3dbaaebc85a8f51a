"""Publishing messages on the broker, from any process: the scheduler, ``enqueue``, the
listener, ``dlq requeue`` and jobs that queue their own continuation.  Broker and Redis errors
become ``RedisUnavailable`` here."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import DramatiqError

from shared.errors import RedisUnavailable
from shared.fleet.messages import QUEUES
from shared.fleet.redisconn import RedisClient, translated

Message = dramatiq.Message[Any]


class Publisher:
    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    @classmethod
    def for_redis(cls, client: RedisClient, namespace: str = "dramatiq") -> Publisher:
        """A publisher on a broker of its own, without the workers' middleware."""
        broker = RedisBroker(client=client, middleware=[], namespace=namespace)
        for queue in QUEUES:
            broker.declare_queue(queue)
        return cls(broker)

    def publish(self, message: Message) -> Message:
        """Enqueue ``message``; returns it as enqueued (its id is the one everybody sees)."""
        what = f"publishing {message.actor_name}"
        try:
            with translated(what):
                enqueued: Message = self.broker.enqueue(message)
        except DramatiqError as exc:  # the broker's own connection errors
            raise RedisUnavailable(f"Redis: {exc} ({what})") from None
        return enqueued
