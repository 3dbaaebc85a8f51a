"""What the listener tells the workers about S3 notifications, per site, in Redis.

- ``bucketbridge:notify-pending:<site>``: a scan published by the listener has not started
  listing the bucket yet.  The listener sets it (``NX``) before it publishes a scan and
  publishes nothing while it exists: that queued scan will see the file.  A scan deletes it
  under the site's lease, *before* it lists, so an event after that publishes a new scan.
  Its TTL is only a safety net for a listener killed between setting it and publishing; it is
  shorter than the queue's visibility timeout, so the killed listener's messages come back
  after it has expired and publish then.
- ``bucketbridge:notify:<site>``: a hash of the number of events ever matched for the site and
  when the last one arrived.  A scan reads the number before it lists and again after it
  released its lease: a change means an event arrived that its listing may have missed (and
  whose scan may have found the lease busy), so it queues another scan.  ``status`` shows when.
- ``bucketbridge:notify-hour:<site>:<hour>``: events per UTC hour, kept two hours, for
  ``status``.

All of it may be lost: a flush at worst publishes one more scan; the hourly scan remains the
safety net for anything missed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.fleet.redisconn import RedisClient, translated

# The defaults of ``Settings.notify_pending_ttl_s`` and ``notify_visibility_timeout_s``.
PENDING_TTL_S = 60
VISIBILITY_TIMEOUT_S = 120
_SITE_TTL_S = 7 * 86400
_HOUR_S = 3600
_HOURS_KEPT = 2


def pending_key(site: str) -> str:
    return f"bucketbridge:notify-pending:{site}"


def counts_key(site: str) -> str:
    return f"bucketbridge:notify:{site}"


def hour_key(site: str, hour: int) -> str:
    return f"bucketbridge:notify-hour:{site}:{hour}"


@dataclass(frozen=True)
class Recent:
    """Notifications for one site, as ``status`` shows them."""

    last_at_s: float | None
    count: int  # in the current and the previous UTC hour
    since_s: float  # the start of the previous UTC hour


class Notices:
    def __init__(self, client: RedisClient, pending_ttl_s: int = PENDING_TTL_S) -> None:
        self.client = client
        self.pending_ttl_s = pending_ttl_s

    # -- the listener -----------------------------------------------------------------------

    def arrived(self, counts: dict[str, int], now_s: float) -> None:
        """Record ``counts`` (site → events matched) at ``now_s``, in one round trip."""
        hour = int(now_s // _HOUR_S)
        with translated("recording notifications"):
            pipe = self.client.pipeline(transaction=False)
            for site, n in counts.items():
                pipe.hincrby(counts_key(site), "events", n)
                pipe.hset(counts_key(site), "last_at_s", repr(now_s))
                pipe.expire(counts_key(site), _SITE_TTL_S)
                pipe.incrby(hour_key(site, hour), n)
                pipe.expire(hour_key(site, hour), _HOUR_S * (_HOURS_KEPT + 1))
            pipe.execute()

    def claim_scan(self, site: str) -> bool:
        """Whether this caller should publish a scan for ``site``: ``False`` while a published
        scan has not started listing yet."""
        with translated("claiming a notification scan"):
            return bool(self.client.set(pending_key(site), b"1", nx=True,
                                        ex=self.pending_ttl_s))

    def unclaim_scan(self, site: str) -> None:
        """Undo ``claim_scan`` when the scan could not be published."""
        with translated("releasing a notification scan"):
            self.client.delete(pending_key(site))

    def scan_published(self, site: str) -> None:
        """A scan was published for ``site`` outside the listener (a scan's follow-up)."""
        with translated("marking a notification scan"):
            self.client.set(pending_key(site), b"1", ex=self.pending_ttl_s)

    # -- the scan ---------------------------------------------------------------------------

    def scan_starting(self, site: str) -> int:
        """Under the site's import lease, before listing: later events need a new scan.
        Returns the event count to compare with ``events_seen`` after the scan."""
        with translated("starting a notification scan"):
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(pending_key(site))
            pipe.hget(counts_key(site), "events")
            _, raw = pipe.execute()
        return int(raw or 0)

    def events_seen(self, site: str) -> int:
        with translated("reading notification counts"):
            raw = self.client.hget(counts_key(site), "events")
        return int(raw or 0)

    def follow_up(self, site: str, seen: int, publish: Callable[[], object]) -> bool:
        """After work that held the site's import lease since the count was ``seen`` (a scan,
        a reimport) released it: when events arrived meanwhile (their scans may have found
        the lease busy), ``publish()`` one scan; whether it did.  Marked pending before it is
        published, as the listener does: a scan that ran at once clears the mark itself."""
        if self.events_seen(site) == seen:
            return False
        self.scan_published(site)
        try:
            publish()
        except Exception:
            self.unclaim_scan(site)
            raise
        return True

    # -- status -----------------------------------------------------------------------------

    def recent(self, site: str, now_s: float) -> Recent:
        hour = int(now_s // _HOUR_S)
        with translated("reading notification counts"):
            pipe = self.client.pipeline(transaction=False)
            pipe.hget(counts_key(site), "last_at_s")
            for h in range(hour - _HOURS_KEPT + 1, hour + 1):
                pipe.get(hour_key(site, h))
            last, *hours = pipe.execute()
        return Recent(float(last) if last else None, sum(int(h or 0) for h in hours),
                      float((hour - _HOURS_KEPT + 1) * _HOUR_S))
