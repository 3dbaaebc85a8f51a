"""The scan's part in event-driven import: it clears the site's pending notification scan
before it lists, and scans again when notifications arrived while it ran."""

from __future__ import annotations

from typing import Any

import pytest

from shared.fleet.notices import Notices, pending_key
from shared.imports.scan import Importer
from shared.services import Services
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from workers.jobs.scan import ScanJob

pytestmark = pytest.mark.timeout(60)


class _Spying(Importer):
    """The real importer; ``during`` runs when the scan begins (after the job's own set-up)."""

    def __init__(self, services: Services, during: Any) -> None:
        super().__init__(services.store, services.reports, services.tail_cache,
                         services.clock, services.metrics)
        self.during = during

    def scan(self, *args: Any, **kwargs: Any) -> Any:
        self.during()
        return super().scan(*args, **kwargs)


def test_the_pending_scan_is_cleared_before_the_bucket_is_listed(
        services: Services, s3: S3, site: SiteConfig) -> None:
    notices = Notices(services.redis)
    assert notices.claim_scan("acme")
    seen_pending: list[int] = []
    job = ScanJob(services, _Spying(services, lambda: seen_pending.append(
        services.redis.exists(pending_key("acme")))), [].append)
    s3.put(site.import_bucket, "accounts-1.csv", b"Identity,Timestamp\na,1700000000\n")
    assert job("acme") == "done"
    assert seen_pending == [0]
    assert notices.claim_scan("acme")  # an event now publishes a new scan


def test_a_notification_during_the_scan_queues_one_more_scan(
        services: Services, site: SiteConfig) -> None:
    notices = Notices(services.redis)
    sent: list[Any] = []
    # Given a notification that arrives while the scan runs (its own scan found the lease busy)
    job = ScanJob(services, _Spying(services, lambda: notices.arrived(
        {"acme": 1}, services.clock.now_s())), sent.append)
    # When the scan ends
    job("acme")
    # Then it queues a scan of the site, marked as the pending one
    assert [(m.actor_name, m.args) for m in sent] == [("scan", ("acme",))]
    assert services.redis.exists(pending_key("acme"))


def test_no_notification_during_the_scan_queues_nothing(
        services: Services, site: SiteConfig) -> None:
    notices = Notices(services.redis)
    notices.arrived({"acme": 3}, services.clock.now_s())  # before the scan: it sees them
    sent: list[Any] = []
    ScanJob(services, _Spying(services, lambda: None), sent.append)("acme")
    assert sent == []
