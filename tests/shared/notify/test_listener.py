"""The listener on moto's S3 and SQS (moto's S3 delivers bucket notifications to its SQS, as
S3 does), real Redis and the real publisher: what is published, what is deleted, when."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest

from shared.errors import RedisUnavailable
from shared.fleet.activity import queued
from shared.fleet.messages import QUEUES
from shared.fleet.notices import Notices, pending_key
from shared.notify.listener import Listener
from shared.notify.lookup import SiteLookup
from shared.services import Services
from shared.store.claims import Locations
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from shared.store.sqs import Queue
from tests.notifications import add_site, fresh_queue, notify

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def queue(s3_endpoint: str) -> Queue:
    return fresh_queue(s3_endpoint)


def listener(services: Services, queue: Queue, *, publish: Any = None,
             visibility_timeout_s: int = 120, cache_s: float = 30) -> Listener:
    lookup = SiteLookup(services.store_s3, services.settings.store_bucket, services.claims,
                        services.sites, services.clock, cache_s=cache_s)
    return Listener(queue, lookup, Notices(services.redis),
                    publish or services.publisher.publish, services.clock, services.metrics,
                    wait_s=0, visibility_timeout_s=visibility_timeout_s)


def drain_queue(lis: Listener) -> int:
    total = 0
    while (n := lis.poll()):
        total += n
    return total


def scans(services: Services, site: str) -> int:
    return sum(1 for q in queued(services.redis, site, QUEUES) if q.actor == "scan")


def sample(services: Services, name: str) -> float:
    return services.metrics.registry.get_sample_value(name) or 0.0


def left_in_queue(queue: Queue) -> int:
    attrs = queue.client.get_queue_attributes(
        QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages",
                                            "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def test_an_upload_publishes_one_scan_and_its_message_is_then_deleted(
        services: Services, s3: S3, import_bucket: str, queue: Queue) -> None:
    # Given a site whose bucket sends its events to the queue
    add_site(services, "acme", import_bucket)
    notify(s3.client, import_bucket, queue)
    lis = listener(services, queue)
    # When a file of the site is uploaded and the listener polls
    s3.put(import_bucket, "accounts-1.csv", b"Identity,Timestamp\n")
    received = drain_queue(lis)
    # Then one scan of the site is queued, and nothing is left in the queue
    assert received == 2  # S3's test event and the upload's
    assert scans(services, "acme") == 1
    assert left_in_queue(queue) == 0
    assert sample(services, "bucketbridge_notify_events_matched_total") == 1
    assert sample(services, "bucketbridge_notify_scans_published_total") == 1
    assert services.redis.exists(pending_key("acme"))
    recent = Notices(services.redis).recent("acme", services.clock.now_s())
    assert recent.count == 1 and recent.last_at_s == services.clock.now_s()


def test_a_burst_publishes_one_scan_until_that_scan_starts_listing(
        services: Services, s3: S3, import_bucket: str, queue: Queue) -> None:
    # Given a site, notifications on, and a burst of 120 files
    add_site(services, "acme", import_bucket, base="in/orders.csv")
    notify(s3.client, import_bucket, queue)
    lis = listener(services, queue)
    for i in range(120):
        s3.put(import_bucket, f"in/orders-{i:04d}.csv", b"x")
    # When the listener reads them all
    drain_queue(lis)
    # Then one scan is queued for the whole burst
    assert scans(services, "acme") == 1
    assert sample(services, "bucketbridge_notify_events_matched_total") == 120
    assert left_in_queue(queue) == 0
    # And once that scan has started listing, the next upload publishes a new one
    Notices(services.redis).scan_starting("acme")
    s3.put(import_bucket, "in/orders-9999.csv", b"x")
    drain_queue(lis)
    assert scans(services, "acme") == 2


def test_keys_of_no_active_site_are_counted_and_dropped(
        services: Services, s3: S3, import_bucket: str, queue: Queue) -> None:
    # Given an active site, a paused one, and a claim whose site has no configuration yet
    # (a sites add between its claim and its site.json), all in one bucket
    add_site(services, "acme", import_bucket)
    add_site(services, "sleepy", import_bucket, base="orders.csv", paused=True)
    ghost = SiteConfig(site_id="ghost", import_bucket=import_bucket, base_filename="items.csv")
    services.claims.hold(Locations.of(ghost))
    notify(s3.client, import_bucket, queue)
    lis = listener(services, queue)
    # When files of each arrive, and files of nobody's
    for key in ("orders-1.csv", "items-1.csv", "readme.txt", "accounts/nested.csv",
                "completed_imports/2026/01/01/accounts-0.csv", "accounts-1.csv"):
        s3.put(import_bucket, key, b"x")
    drain_queue(lis)
    # Then only the active site gets a scan; the rest are counted and deleted
    assert (scans(services, "acme"), scans(services, "sleepy"), scans(services, "ghost")) \
        == (1, 0, 0)
    assert sample(services, "bucketbridge_notify_events_unmatched_total") == 5
    assert left_in_queue(queue) == 0


def test_malformed_messages_are_counted_and_deleted_and_eventbridge_events_are_read(
        services: Services, s3: S3, import_bucket: str, queue: Queue) -> None:
    add_site(services, "acme", import_bucket)
    lis = listener(services, queue)
    queue.send("this is not an event")
    queue.send('{"Records": [{"eventSource": "aws:s3"}]}')
    queue.send(orjson.dumps({"source": "aws.s3", "detail-type": "Object Created",
                             "detail": {"bucket": {"name": import_bucket},
                                        "object": {"key": "accounts-7.csv"}}}).decode())
    drain_queue(lis)
    assert sample(services, "bucketbridge_notify_messages_malformed_total") == 2
    assert scans(services, "acme") == 1
    assert left_in_queue(queue) == 0


def test_a_message_whose_scan_could_not_be_published_comes_back_and_is_published_then(
        services: Services, s3: S3, import_bucket: str, queue: Queue) -> None:
    add_site(services, "acme", import_bucket)
    notify(s3.client, import_bucket, queue)

    def broken(_message: Any) -> Any:
        raise RedisUnavailable("Redis: connection refused (publishing scan)")

    # Given a publisher that fails
    s3.put(import_bucket, "accounts-1.csv", b"x")
    drain_queue(listener(services, queue, publish=broken, visibility_timeout_s=1))
    # Then the event's message stays in the queue, and no scan is claimed as pending
    assert scans(services, "acme") == 0
    assert left_in_queue(queue) == 1
    assert not services.redis.exists(pending_key("acme"))
    # And when it comes back to a working listener, the scan is published
    time.sleep(1.5)
    drain_queue(listener(services, queue))
    assert scans(services, "acme") == 1
    assert left_in_queue(queue) == 0


def test_a_site_added_after_the_bucket_was_read_is_found_once_the_copy_is_old(
        services: Services, s3: S3, import_bucket: str, queue: Queue) -> None:
    add_site(services, "acme", import_bucket)
    notify(s3.client, import_bucket, queue)
    lis = listener(services, queue, cache_s=30)
    s3.put(import_bucket, "accounts-1.csv", b"x")
    drain_queue(lis)
    add_site(services, "beta", import_bucket, base="orders.csv")
    s3.put(import_bucket, "orders-1.csv", b"x")
    drain_queue(lis)
    assert scans(services, "beta") == 0  # within cache_s: the copy is trusted
    services.clock.advance(31)  # type: ignore[attr-defined]
    s3.put(import_bucket, "orders-2.csv", b"x")
    drain_queue(lis)
    assert scans(services, "beta") == 1


def test_two_listeners_at_once_publish_one_scan_per_site_and_leave_nothing(
        services: Services, s3: S3, import_bucket: str, export_bucket: str,
        queue: Queue) -> None:
    # Given three sites on two buckets, and 150 uploads spread over them
    add_site(services, "a", import_bucket, base="a.csv")
    add_site(services, "b", import_bucket, base="b.csv")
    add_site(services, "c", export_bucket, base="c.csv")
    notify(s3.client, import_bucket, queue)
    notify(s3.client, export_bucket, queue)
    for i in range(50):
        s3.put(import_bucket, f"a-{i}.csv", b"x")
        s3.put(import_bucket, f"b-{i}.csv", b"x")
        s3.put(export_bucket, f"c-{i}.csv", b"x")
    # When two listeners read the queue at once
    listeners = [listener(services, queue), listener(services, queue)]
    threads = [threading.Thread(target=drain_queue, args=(lis,)) for lis in listeners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=50)
    # Then each site has exactly one scan queued, and every message was handled once
    assert [scans(services, s) for s in "abc"] == [1, 1, 1]
    assert left_in_queue(queue) == 0
    assert sample(services, "bucketbridge_notify_events_matched_total") == 150
