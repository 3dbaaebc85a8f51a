"""Per-site leases: at most one import and one export per site at a time.

A lease is a redis-py ``Lock`` with a short TTL, renewed by a background thread while the work
goes on.  If renewal fails for longer than the TTL the lease is marked lost and the holder must
stop at its next checkpoint.  The lease is an optimisation of who works; correctness comes from
the conditional revision write, which fences a holder that lost its lease without noticing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from types import TracebackType

import orjson
import redis
from redis.exceptions import LockError, LockNotOwnedError, RedisError

from shared.errors import LeaseLost, RedisUnavailable

logger = logging.getLogger(__name__)

DEFAULT_LEASE_TTL_S = 30.0
# The leases of a site: one import writer (scans, reimports) and one exporter at a time.
IMPORT_LEASE = "import"
EXPORT_LEASE = "export"


def lease_name(job: str, site: str) -> str:
    return f"bucketbridge:lease:{job}:{site}"


def worker_name() -> str:
    """``host:pid`` of this process, as lease holders and failed attempts name a worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as its token says: which worker process, for which message, since
    when.  (The token stays unique: it carries a random id too.)"""

    worker: str = ""  # host:pid
    message_id: str = ""
    since: str = ""  # ISO 8601 UTC

    def token(self) -> bytes:
        return orjson.dumps({"id": uuid.uuid4().hex, "worker": self.worker,
                             "message_id": self.message_id, "since": self.since})

    @classmethod
    def from_token(cls, raw: bytes) -> Holder:
        """The holder a token names; an empty one for a token of another form."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        return cls(worker=str(data.get("worker", "")),
                   message_id=str(data.get("message_id", "")), since=str(data.get("since", "")))


def lease_holder(client: redis.Redis, job: str, site: str) -> tuple[Holder, float] | None:
    """Who holds ``site``'s ``job`` lease now, and for how many more seconds unless renewed;
    ``None`` when nobody does."""
    try:
        pipe = client.pipeline(transaction=False)
        pipe.get(lease_name(job, site))
        pipe.pttl(lease_name(job, site))
        raw, ttl_ms = pipe.execute()
    except RedisError as exc:
        raise RedisUnavailable(f"Redis: {exc} (reading lease {job}/{site})") from None
    if raw is None:
        return None
    return Holder.from_token(raw), max(0.0, int(ttl_ms) / 1000)


class Lease:
    """Non-blocking lease on (job, site); use ``acquire()`` then ``with lease:``."""

    def __init__(self, client: redis.Redis, job: str, site: str,
                 ttl_s: float = DEFAULT_LEASE_TTL_S, holder: Holder | None = None) -> None:
        self.job = job
        self.site = site
        self.ttl_s = ttl_s
        self.holder = holder or Holder()
        # thread_local=False: the renewal thread must see the token the worker thread set.
        self._lock = client.lock(lease_name(job, site), timeout=ttl_s, blocking=False,
                                 thread_local=False)
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lease if nobody holds it; ``False`` when the site is busy."""
        try:
            got = bool(self._lock.acquire(blocking=False, token=self.holder.token()))
        except RedisError as exc:
            raise RedisUnavailable(f"cannot take lease {self.job}/{self.site}: {exc}") from None
        if got:
            self._renewer = threading.Thread(target=self._renew, name=f"lease-{self.site}",
                                             daemon=True)
            self._renewer.start()
        return got

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def check(self) -> None:
        """Raise ``LeaseLost`` if the lease can no longer be trusted."""
        if self._lost.is_set():
            raise LeaseLost(f"lease {self.job}/{self.site} was lost")

    def _renew(self) -> None:
        interval_s = self.ttl_s / 3
        last_ok = time.monotonic()
        while not self._stop.wait(interval_s):
            try:
                self._lock.reacquire()
                last_ok = time.monotonic()
            except (LockNotOwnedError, LockError):
                logger.error("site=%s job=%s lease taken by another holder", self.site, self.job)
                self._lost.set()
                return
            except RedisError as exc:
                logger.warning("site=%s job=%s lease renewal failed: %s", self.site, self.job, exc)
                if time.monotonic() - last_ok >= self.ttl_s:
                    self._lost.set()
                    return

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self._lost.is_set():
            return
        try:
            self._lock.release()
        except (LockError, RedisError) as exc:
            logger.warning("site=%s job=%s lease release failed: %s", self.site, self.job, exc)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
