"""Disposable hints kept in Redis.  Losing them costs a few extra S3 requests, nothing else.

Every hint is a fact about immutable revisions ("revision n exists", "revision c came from the
CSV import and c+1..m did not"), so a hint can be old but never wrong for the store it names;
keys name the store bucket, so deployments sharing a Redis never see each other's hints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import redis

from shared.fleet.redisconn import best_effort

T = TypeVar("T")


class RevisionTailCache:
    def __init__(self, client: redis.Redis | None, store_bucket: str = "") -> None:
        self.client = client
        self.store_bucket = store_bucket

    def _key(self, kind: str, site: str) -> str:
        return f"bucketbridge:cache:{kind}:{self.store_bucket}:{site}"

    def _call(self, site: str, default: T, op: Callable[[redis.Redis], T]) -> T:
        return best_effort(self.client, "revision cache", site, default, op)

    # -- the highest revision number known to exist ----------------------------------------

    def get(self, site: str) -> int:
        raw = self._call(site, None, lambda c: c.get(self._key("revision-tail", site)))
        try:
            return int(raw) if raw is not None else 0
        except ValueError:
            return 0

    def put(self, site: str, number: int) -> None:
        self._call(site, None, lambda c: c.set(self._key("revision-tail", site), number))

    def forget(self, site: str) -> None:
        self._call(site, None, lambda c: c.delete(self._key("revision-tail", site)))

    # -- the import cursor: (cursor, checked) ----------------------------------------------

    def get_cursor(self, site: str) -> tuple[int, int] | None:
        """``(cursor, checked)``: revision ``cursor`` came from the CSV import (0: none did)
        and revisions ``cursor+1..checked`` did not."""
        raw = self._call(site, None, lambda c: c.get(self._key("import-cursor", site)))
        if not isinstance(raw, bytes):
            return None
        try:
            cursor, checked = (int(x) for x in raw.split(b":"))
        except ValueError:
            return None
        return cursor, checked

    def put_cursor(self, site: str, cursor: int, checked: int) -> None:
        self._call(site, None, lambda c: c.set(self._key("import-cursor", site),
                                               f"{cursor}:{checked}"))

    def forget_cursor(self, site: str) -> None:
        self._call(site, None, lambda c: c.delete(self._key("import-cursor", site)))
