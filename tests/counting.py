"""Counting what the control plane costs: S3 requests as moto's server logged them, and Redis
round trips as the client sent them."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

# moto's server logs each request it answered through werkzeug:
#   '... "GET /bucket/key?x HTTP/1.1" 200 -'
_REQUEST = re.compile(r'"([A-Z]+) (/[^ ]*) HTTP/[0-9.]+" (\d+)')
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours some status lines


class S3RequestLog(logging.Handler):
    """The requests moto's server answered for some buckets, in order: (method, path, status)."""

    def __init__(self, *buckets: str) -> None:
        super().__init__(logging.INFO)
        self.buckets = buckets
        self.requests: list[tuple[str, str, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = _REQUEST.search(_COLOUR.sub("", record.getMessage()))
        if found is None:
            return
        method, path, status = found.group(1), found.group(2), int(found.group(3))
        if any(path == f"/{b}" or path.startswith((f"/{b}/", f"/{b}?")) for b in self.buckets):
            self.requests.append((method, path, status))

    def clear(self) -> None:
        self.requests.clear()

    def __len__(self) -> int:
        return len(self.requests)

    def writes(self) -> list[tuple[str, str, int]]:
        return [r for r in self.requests if r[0] in {"PUT", "POST", "DELETE"}]


@contextmanager
def s3_requests(*buckets: str) -> Iterator[S3RequestLog]:
    log = S3RequestLog(*buckets)
    server_logger = logging.getLogger("werkzeug")
    level = server_logger.level
    server_logger.setLevel(logging.INFO)
    server_logger.addHandler(log)
    try:
        yield log
    finally:
        server_logger.removeHandler(log)
        server_logger.setLevel(level)


class CountingConnection(redis.Connection):
    """A connection that counts the round trips sent over it (a pipeline is one)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


def counting_redis(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url)
    client.connection_pool.connection_class = CountingConnection
    return client
