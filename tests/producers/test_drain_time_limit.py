"""``drain`` enforces the same time limit as the worker: an actor past its ``time_limit`` is
stopped in the draining process too.  Real Redis, in-process worker threads."""

from __future__ import annotations

import time
import uuid

import dramatiq
import pytest
import redis
from dramatiq.middleware import TimeLimit

from producers.drain import DrainEnd, drain_queues
from shared.fleet.messages import IMPORT_QUEUE
from shared.services import Services
from workers.broker import build_broker
from workers.middleware.shutdown import GracefulShutdown

pytestmark = pytest.mark.timeout(60)


def test_drain_enforces_the_actors_time_limit_as_a_worker_does(redis_client: redis.Redis,
                                                                 services: Services) -> None:
    # Given a broker built as the runtime builds it, and an actor that would run for a minute
    # past its time limit of half a second
    broker = build_broker(services.metrics, GracefulShutdown(), redis_client, services.clock,
                          namespace=f"t-{uuid.uuid4().hex[:8]}")
    finished: list[bool] = []

    def endless() -> None:
        for _ in range(600):
            time.sleep(0.1)
        finished.append(True)

    actor = dramatiq.Actor(endless, broker=broker, actor_name="endless",
                           queue_name=IMPORT_QUEUE, priority=0,
                           options={"time_limit": 500, "max_retries": 0})
    actor.send()
    # When the queues are drained in this process
    started = time.monotonic()
    end = drain_queues(broker, timeout_s=30)
    # Then the message was stopped at its time limit (plus the watchdog's second), not run out
    assert end is DrainEnd.EMPTY
    assert time.monotonic() - started < 10
    assert finished == []
    assert any(isinstance(m, TimeLimit) and m.manager.is_alive() for m in broker.middleware)
