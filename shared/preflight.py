"""Does this environment keep bucketbridge's guarantees?  Checked at start-up and on demand.

- The store enforces conditional writes: a second ``If-None-Match: *`` create and a stale
  ``If-Match`` replace are both refused.  An S3-compatible store that ignores these headers
  would silently void exactly-once (the revision write is the fence).
- Redis answers and evicts nothing (``maxmemory-policy noeviction``): an evicting Redis can drop
  queued messages and leases.
- The local clock agrees with the store's within a bound: slots, cutoffs and ages are computed
  from it.

Process wiring, like ``shared.services``: it composes the store and fleet adapters.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

from shared.clock import Clock, SystemClock
from shared.errors import BucketbridgeError, EnvironmentRefused, PreconditionFailed
from shared.fleet.redisconn import RedisClient, check, connect, eviction_policy
from shared.settings import Settings
from shared.store.s3 import S3, make_client

MAX_CLOCK_SKEW_S = 30.0
PREFLIGHT_PREFIX = "preflight/"


@dataclass(frozen=True)
class Check:
    name: str  # conditional-writes, redis-eviction, clock
    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def conditional_writes(s3: S3, bucket: str) -> Check:
    name = "conditional-writes"
    key = f"{PREFLIGHT_PREFIX}{uuid.uuid4().hex}"
    where = f"the store s3://{bucket}"
    try:
        etag = s3.put(bucket, key, b"1", if_none_match=True)
        try:
            try:
                s3.put(bucket, key, b"2", if_none_match=True)
            except PreconditionFailed:
                pass
            else:
                return Check(name, False, f"{where} accepted a second create of one key with "
                             "If-None-Match: *; exactly-once needs conditional writes")
            try:
                s3.put(bucket, key, b"3", if_match=etag.strip('"') + "0")
            except PreconditionFailed:
                pass
            else:
                return Check(name, False, f"{where} accepted a replace with a stale If-Match; "
                             "exactly-once needs conditional writes")
        finally:
            s3.delete(bucket, key)
    except BucketbridgeError as exc:
        return Check(name, False, str(exc))
    return Check(name, True, f"{where} refuses a second create and a stale replace")


def redis_eviction(client: RedisClient) -> Check:
    name = "redis-eviction"
    try:
        check(client)
        policy = eviction_policy(client)
    except BucketbridgeError as exc:
        return Check(name, False, str(exc))
    if policy is None:
        return Check(name, True, "Redis answers; its maxmemory-policy cannot be read here "
                     "(CONFIG is not allowed): make sure it is noeviction")
    if policy != "noeviction":
        return Check(name, False, f"Redis maxmemory-policy is {policy}: it may evict queued "
                     "messages and leases; set it to noeviction")
    return Check(name, True, "Redis answers, maxmemory-policy noeviction")


def clock_skew(s3: S3, bucket: str, clock: Clock, max_skew_s: float = MAX_CLOCK_SKEW_S) -> Check:
    name = "clock"
    try:
        before = clock.now_s()
        server = s3.server_time_s(bucket)
        after = clock.now_s()
    except BucketbridgeError as exc:
        return Check(name, False, str(exc))
    # The Date header has whole seconds: allow for that and for the round trip.
    skew = max(server - after, before - server - 1.0, 0.0)
    if skew > max_skew_s:
        return Check(name, False, f"the local clock is {skew:.0f} s away from the store's "
                     f"(more than {max_skew_s:.0f} s): fix the host's time sync")
    return Check(name, True, f"the local clock agrees with the store's within {max_skew_s:.0f} s")


def preflight(s3: S3, store_bucket: str, redis: RedisClient, clock: Clock) -> list[Check]:
    """Every check, in order; none raises."""
    return [conditional_writes(s3, store_bucket), redis_eviction(redis),
            clock_skew(s3, store_bucket, clock)]


def check_environment(settings: Settings, what: str, clock: Clock | None = None) -> None:
    """``require_guarantees`` at the start of a fleet process (``what``), with clients of its
    own: nothing else of the process (its metrics above all) exists yet."""
    s3 = S3(make_client(settings.s3_endpoint_url))
    redis = connect(settings.redis_url)
    try:
        require_guarantees(s3, settings.store_bucket, redis, clock or SystemClock(), what)
    finally:
        redis.close()


def require_guarantees(s3: S3, store_bucket: str, redis: RedisClient, clock: Clock,
                       what: str) -> list[Check]:
    """The start-up check of a fleet process (``what``: the worker, the scheduler, the
    listener): every check passes, or ``EnvironmentRefused`` says, in one line, which failed."""
    checks = preflight(s3, store_bucket, redis, clock)
    failed = [c for c in checks if not c.ok]
    if failed:
        why = "; ".join(f"{c.name}: {c.detail}" for c in failed)
        raise EnvironmentRefused(f"the {what} refuses to start: {why}")
    return checks
