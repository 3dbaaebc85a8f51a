"""What a job last reported for a site: a disposable hint in Redis that lets a run which changed
nothing skip its status writes.

An idle site's scans and exports end the same way every time; writing the same status record
and fleet summary entry again would cost four S3 requests per message.  A job keeps the
fingerprint of what it reported (outcome, error, figures; not the times) for ``REFRESH_S``:
a run with the same fingerprint within that time writes nothing.  So the recorded "last run"
and "last success" times of an idle site are at most ``REFRESH_S`` old.  Losing the hint costs
one write of each record.  When each job last ran is noted apart (``ran``), so the fleet view
shows an idle site's last run, not only its last report.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from redis.exceptions import RedisError

from shared.fleet.redisconn import RedisClient, best_effort

logger = logging.getLogger(__name__)

REFRESH_S = 4 * 3600
RAN_TTL_S = 7 * 86400
_BATCH = 1000
_WHAT = "report memo"


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
        found = best_effort(self.client, _WHAT, site, None,
                            lambda c: c.get(self._key(job, site)))
        return found is not None and found == print_.encode()

    def remember(self, job: str, site: str, print_: str) -> None:
        best_effort(self.client, _WHAT, site, None,
                    lambda c: c.set(self._key(job, site), print_, ex=self.refresh_s))

    def forget(self, job: str, site: str) -> None:
        best_effort(self.client, _WHAT, site, None,
                    lambda c: c.delete(self._key(job, site), self._ran_key(job, site)))

    # -- when each job last ran: what the fleet view shows when the report was not rewritten --

    def _ran_key(self, job: str, site: str) -> str:
        return f"bucketbridge:cache:ran:{self.store_bucket}:{job}:{site}"

    def ran(self, job: str, site: str, at_s: float) -> None:
        """Note that ``job`` ran for ``site`` at ``at_s`` (one Redis round trip)."""
        best_effort(self.client, _WHAT, site, None,
                    lambda c: c.set(self._ran_key(job, site), f"{at_s:.3f}", ex=RAN_TTL_S))

    def last_runs(self, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        """When each ``(job, site)`` last ran, as far as Redis remembers: batches of ``MGET``,
        one round trip per 1,000; nothing when Redis is away."""
        out: dict[tuple[str, str], float] = {}
        if self.client is None:
            return out
        try:
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start:start + _BATCH]
                values = self.client.mget([self._ran_key(j, s) for j, s in batch])
                for pair, value in zip(batch, values, strict=True):
                    if isinstance(value, bytes):
                        out[pair] = float(value)
        except (RedisError, ValueError) as exc:
            logger.warning("report memo unavailable: %s", exc)
        return out
