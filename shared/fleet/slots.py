"""Scheduler slots: each (job, site, slot) is published once, whichever replica gets there.

A slot is claimed in Redis before its message is published and marked published after, so two
replicas never both publish it, and a replica that dies between claim and publish leaves a
stale claim that a later tick takes over instead of skipping the slot.  The markers expire a
little after the slot: flushing Redis at worst publishes a slot's message again, which the
jobs take as the idempotent no-op it is.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from shared.fleet.redisconn import RedisClient, translated

CLAIM_STALE_S = 60
DEFAULT_PREFIX = "bucketbridge:slot"

# Take over a claim only if it is still the stale one we read (compare-and-set).
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def slot_of(site: str, now_s: float, interval_s: int) -> int:
    """``floor((now + offset) / interval)`` with a per-site offset that spreads sites over the
    interval."""
    offset_s = zlib.crc32(site.encode("utf-8")) % interval_s
    return int((now_s + offset_s) // interval_s)


def slot_start_s(site: str, slot: int, interval_s: int) -> float:
    """When ``slot`` of ``site`` begins (Unix seconds): the inverse of ``slot_of``."""
    return float(slot * interval_s - zlib.crc32(site.encode("utf-8")) % interval_s)


class Claim(Enum):
    CLAIMED = "claimed"  # this caller publishes the slot
    PUBLISHED = "published"  # done already
    HELD = "held"  # another caller claimed it and has not published yet (nor gone stale)


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    held_since_s: float | None = None  # HELD: when the holder claimed it


class SlotClaims:
    def __init__(self, client: RedisClient, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._take_over = client.register_script(_TAKE_OVER)

    def key(self, job: str, site: str, slot: int) -> str:
        return f"{self.prefix}:{job}:{site}:{slot}"

    def claim(self, key: str, now_s: float, ttl_s: int) -> bool:
        """Whether this caller may publish the slot ``key`` now."""
        with translated("claiming a scheduler slot"):
            claim = f"claimed:{now_s:.3f}"
            if self.client.set(key, claim, nx=True, ex=ttl_s):
                return True
            current = self.client.get(key)
            text = current.decode() if isinstance(current, bytes) else str(current)
            if not text.startswith("claimed:"):
                return False
            if now_s - float(text.split(":", 1)[1]) < CLAIM_STALE_S:
                return False
            return bool(self._take_over(keys=[key], args=[text, claim, ttl_s]))

    def claim_many(self, keys: Sequence[tuple[str, int]], now_s: float,
                   ) -> list[ClaimResult]:
        """``claim`` for many ``(key, ttl_s)`` at once: two pipelined round trips (create the
        claims; read those that existed), plus one per stale claim taken over."""
        if not keys:
            return []
        claim = f"claimed:{now_s:.3f}"
        with translated("claiming scheduler slots"):
            pipe = self.client.pipeline(transaction=False)
            for key, ttl_s in keys:
                pipe.set(key, claim, nx=True, ex=ttl_s)
            created = pipe.execute()
            existing = [i for i, ok in enumerate(created) if not ok]
            pipe = self.client.pipeline(transaction=False)
            for i in existing:
                pipe.get(keys[i][0])
            current = dict(zip(existing, pipe.execute(), strict=True))
        out = []
        for i, (key, ttl_s) in enumerate(keys):
            if i not in current:
                out.append(ClaimResult(Claim.CLAIMED))
                continue
            value = current[i]
            text = value.decode() if isinstance(value, bytes) else str(value)
            if not text.startswith("claimed:"):
                out.append(ClaimResult(Claim.PUBLISHED))
                continue
            since_s = float(text.split(":", 1)[1])
            if now_s - since_s >= CLAIM_STALE_S and self.claim(key, now_s, ttl_s):
                out.append(ClaimResult(Claim.CLAIMED))
            else:
                out.append(ClaimResult(Claim.HELD, since_s))
        return out

    def published_many(self, keys: Sequence[tuple[str, int]]) -> None:
        if not keys:
            return
        with translated("marking scheduler slots published"):
            pipe = self.client.pipeline(transaction=False)
            for key, ttl_s in keys:
                pipe.set(key, "published", ex=ttl_s)
            pipe.execute()
