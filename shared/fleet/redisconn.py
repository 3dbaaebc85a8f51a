"""The fleet's Redis: one way to connect, and redis-py's errors translated once, here.

Redis holds only what may be lost (queues, leases, slot markers, hints): a flush delays work,
never loses or duplicates data.  Nothing outside ``shared.fleet`` sees a ``redis`` exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import RedisError

from shared.errors import RedisUnavailable

RedisClient = redis.Redis


def connect(url: str) -> RedisClient:
    """A client for ``url`` (validated by ``Settings``); it connects on first use."""
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                health_check_interval=30)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Run the block, turning any redis-py error into ``RedisUnavailable`` naming ``what``."""
    try:
        yield
    except RedisError as exc:
        raise RedisUnavailable(f"Redis: {exc} ({what})") from None


def check(client: RedisClient) -> None:
    """``RedisUnavailable`` unless Redis answers."""
    with translated("ping"):
        client.ping()
