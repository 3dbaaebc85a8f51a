"""The fleet's Redis: one way to connect, and redis-py's errors translated once, here.

Redis holds only what may be lost (queues, leases, slot markers, hints): a flush delays work,
never loses or duplicates data.  Nothing outside ``shared.fleet`` sees a ``redis`` exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import redis
from redis.exceptions import RedisError

from shared.errors import RedisUnavailable

logger = logging.getLogger(__name__)

RedisClient = redis.Redis
T = TypeVar("T")


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


def best_effort(client: RedisClient | None, what: str, site: str, default: T,
                op: Callable[[RedisClient], T]) -> T:
    """``op(client)`` for a disposable hint: ``default`` when there is no client or Redis
    fails (logged as ``what`` unavailable for ``site``); losing a hint costs work, never data."""
    if client is None:
        return default
    try:
        return op(client)
    except RedisError as exc:
        logger.warning("site=%s %s unavailable: %s", site, what, exc)
        return default


def check(client: RedisClient) -> None:
    """``RedisUnavailable`` unless Redis answers."""
    with translated("ping"):
        client.ping()


def eviction_policy(client: RedisClient) -> str | None:
    """Redis's ``maxmemory-policy``, or ``None`` where ``CONFIG`` is not allowed (some managed
    services rename or forbid it)."""
    try:
        with translated("reading maxmemory-policy"):
            found = client.config_get("maxmemory-policy")
    except RedisUnavailable:
        if _answers(client):
            return None
        raise
    value = found.get("maxmemory-policy") if isinstance(found, dict) else None
    return value.decode() if isinstance(value, bytes) else value


def _answers(client: RedisClient) -> bool:
    try:
        client.ping()
    except RedisError:
        return False
    return True
