"""Disposable hints kept in Redis.  Losing them costs a few extra S3 requests, nothing else."""

from __future__ import annotations

import logging

import redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class RevisionTailCache:
    """The highest revision number known to exist per site, so finding the tail lists little.

    Keys name the store bucket too: deployments sharing a Redis never see each other's hints.
    """

    def __init__(self, client: redis.Redis | None, store_bucket: str = "") -> None:
        self.client = client
        self.store_bucket = store_bucket

    def _key(self, site: str) -> str:
        return f"bucketbridge:cache:revision-tail:{self.store_bucket}:{site}"

    def forget(self, site: str) -> None:
        if self.client is None:
            return
        try:
            self.client.delete(self._key(site))
        except RedisError as exc:
            logger.warning("site=%s revision cache unavailable: %s", site, exc)

    def get(self, site: str) -> int:
        if self.client is None:
            return 0
        try:
            raw = self.client.get(self._key(site))
        except RedisError as exc:
            logger.warning("site=%s revision cache unavailable: %s", site, exc)
            return 0
        try:
            return int(raw) if raw is not None else 0
        except ValueError:
            return 0

    def put(self, site: str, number: int) -> None:
        if self.client is None:
            return
        try:
            self.client.set(self._key(site), number)
        except RedisError as exc:
            logger.warning("site=%s revision cache unavailable: %s", site, exc)
