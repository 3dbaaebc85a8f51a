"""A broker for processes that only publish (the scheduler and ``enqueue``)."""

from __future__ import annotations

from dramatiq.brokers.redis import RedisBroker

from shared.fleet.messages import QUEUES
from shared.services import Services


def publishing_broker(services: Services) -> RedisBroker:
    broker = RedisBroker(client=services.redis, middleware=[])
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker
