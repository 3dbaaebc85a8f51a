"""What a job last reported for a site: a disposable hint in Redis that lets a run which changed
nothing skip its status writes.

An idle site's scans and exports end the same way every time; writing the same status record
and fleet summary entry again would cost four S3 requests per message.  A job keeps the
fingerprint of what it reported (outcome, error, figures; not the times) for ``REFRESH_S``:
a run with the same fingerprint within that time writes nothing.  So the recorded "last run"
and "last success" times of an idle site are at most ``REFRESH_S`` old.  Losing the hint costs
one write of each record.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from redis.exceptions import RedisError

from shared.fleet.redisconn import RedisClient

logger = logging.getLogger(__name__)

REFRESH_S = 4 * 3600


def fingerprint(outcome: str, error: str | None, details: dict[str, Any] | None) -> str:
    """What a report says, without its times (fields named ``…_at``)."""
    stable = {k: v for k, v in (details or {}).items() if not k.endswith("_at")}
    data = orjson.dumps([outcome, error, stable], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class ReportMemo:
    def __init__(self, client: RedisClient | None, store_bucket: str,
                 refresh_s: int = REFRESH_S) -> None:
        self.client = client
        self.store_bucket = store_bucket
        self.refresh_s = refresh_s

    def _key(self, job: str, site: str) -> str:
        return f"bucketbridge:cache:reported:{self.store_bucket}:{job}:{site}"

    def unchanged(self, job: str, site: str, print_: str) -> bool:
        """Whether ``site``'s last ``job`` report, within ``refresh_s``, said the same."""
        if self.client is None:
            return False
        try:
            return self.client.get(self._key(job, site)) == print_.encode()
        except RedisError as exc:
            logger.warning("site=%s report memo unavailable: %s", site, exc)
            return False

    def remember(self, job: str, site: str, print_: str) -> None:
        if self.client is None:
            return
        try:
            self.client.set(self._key(job, site), print_, ex=self.refresh_s)
        except RedisError as exc:
            logger.warning("site=%s report memo unavailable: %s", site, exc)

    def forget(self, job: str, site: str) -> None:
        if self.client is None:
            return
        try:
            self.client.delete(self._key(job, site))
        except RedisError as exc:
            logger.warning("site=%s report memo unavailable: %s", site, exc)
