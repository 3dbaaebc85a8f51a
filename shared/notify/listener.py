"""The listener's loop: queue messages of S3 events in, coalesced scan messages out.

One ``poll`` receives up to ten messages, finds the sites each event's key belongs to
(``SiteLookup``), records the arrivals (``Notices.arrived``), publishes at most one scan per
site (none while a scan published earlier has not started listing: ``Notices.claim_scan``),
and only then deletes the messages whose work is done: malformed ones, ones that match no
site, and ones whose sites' scans are published or already pending.  A message is never
deleted before its scan is published, so a listener killed at any point loses nothing: the
message comes back after its visibility timeout and is handled again (a second scan is
harmless, scans are idempotent under the site's lease).  Replicas share nothing but Redis and
the queue, so two or more can run at once.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from shared.clock import Clock
from shared.errors import BucketbridgeError, RetryableError
from shared.fleet.messages import scan_message
from shared.fleet.notices import VISIBILITY_TIMEOUT_S, Notices
from shared.metrics import Metrics
from shared.notify.events import MalformedMessage, parse
from shared.notify.lookup import SiteLookup
from shared.store.sqs import Queue, QueueMessage

logger = logging.getLogger(__name__)

BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)


class Listener:
    def __init__(self, queue: Queue, lookup: SiteLookup, notices: Notices,
                 publish: Callable[[Any], Any], clock: Clock, metrics: Metrics, *,
                 wait_s: int, visibility_timeout_s: int = VISIBILITY_TIMEOUT_S) -> None:
        self.queue = queue
        self.lookup = lookup
        self.notices = notices
        self.publish = publish
        self.clock = clock
        self.metrics = metrics
        self.wait_s = wait_s
        self.visibility_timeout_s = visibility_timeout_s

    def poll(self) -> int:
        """Receive once and handle what came; returns the number of messages received."""
        messages = self.queue.receive(wait_s=self.wait_s,
                                      visibility_timeout_s=self.visibility_timeout_s)
        now_s = self.clock.now_s()
        m = self.metrics
        m.notify_last_receive.set(now_s)
        m.notify_oldest_age.set(max((now_s - msg.sent_at_s for msg in messages
                                     if msg.sent_at_s is not None), default=0.0))
        if not messages:
            return 0
        m.notify_messages.inc(len(messages))
        done: list[QueueMessage] = []
        waiting: dict[str, list[QueueMessage]] = {}
        arrivals: Counter[str] = Counter()
        for msg in messages:
            sites = self._sites_of(msg)
            if sites is None:
                continue  # left in the queue: it comes back after its visibility timeout
            if not sites:
                done.append(msg)
            for site in sites:
                waiting.setdefault(site, []).append(msg)
                arrivals[site] += 1
        if arrivals:
            # Before any scan is claimed: a scan running now compares this count after it ends.
            self.notices.arrived(dict(arrivals), now_s)
        kept: set[str] = set()
        for site, site_messages in waiting.items():
            try:
                self._scan(site)
            except RetryableError as exc:
                logger.warning("site=%s scan not published, its %d message(s) come back: %s",
                               site, len(site_messages), exc)
                kept.update(msg.message_id for msg in site_messages)
        seen: set[str] = {msg.message_id for msg in done}
        for site_messages in waiting.values():
            for msg in site_messages:
                if msg.message_id not in kept and msg.message_id not in seen:
                    seen.add(msg.message_id)
                    done.append(msg)
        if done:
            self.queue.delete(done)
        return len(messages)

    def _sites_of(self, msg: QueueMessage) -> set[str] | None:
        """The sites ``msg``'s events belong to (empty: delete it), or ``None`` if that could
        not be decided now."""
        m = self.metrics
        try:
            events = parse(msg.body)
        except MalformedMessage as exc:
            logger.warning("message=%s malformed, deleted: %s", msg.message_id, exc)
            m.notify_malformed.inc()
            return set()
        sites: set[str] = set()
        try:
            for event in events:
                m.notify_events.inc()
                found = self.lookup.sites_for(event.bucket, event.key)
                if found:
                    m.notify_matched.inc()
                    logger.debug("message=%s s3://%s/%s is a file of site(s) %s",
                                msg.message_id, event.bucket, event.key, ", ".join(found))
                else:
                    m.notify_unmatched.inc()
                    logger.debug("message=%s s3://%s/%s matches no active site",
                                 msg.message_id, event.bucket, event.key)
                sites.update(found)
        except BucketbridgeError as exc:
            logger.warning("message=%s could not be matched now, it comes back: %s",
                           msg.message_id, exc)
            return None
        return sites

    def _scan(self, site: str) -> None:
        """Publish a scan of ``site`` unless one is pending already."""
        if not self.notices.claim_scan(site):
            logger.debug("site=%s a scan is pending already", site)
            return
        try:
            message = self.publish(scan_message(site))
        except BaseException:
            try:
                self.notices.unclaim_scan(site)
            except RetryableError as exc:  # the claim lapses by itself
                logger.warning("site=%s could not release the scan claim: %s", site, exc)
            raise
        self.metrics.notify_scans_published.inc()
        logger.info("site=%s scan published as message %s",
                    site, getattr(message, "message_id", "?"))

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; trouble is logged and retried with a growing pause."""
        failures = 0
        while not stop.is_set():
            try:
                self.poll()
                failures = 0
            except BucketbridgeError as exc:
                pause_s = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                failures += 1
                logger.warning("listener: %s; trying again in %.0f s", exc, pause_s)
                stop.wait(pause_s)
