"""A scan that stops at its budget with work left continues at once, behind the messages
already queued: a large file finishes in a row of budgets, no scheduler slot needed, while
other sites get their turn in between."""

from __future__ import annotations

from dataclasses import replace

import pytest
import redis

from producers.drain import DrainEnd, drain_queues
from shared.fleet.messages import scan_message
from shared.formats.importkeys import COMPLETED_PREFIX
from shared.metrics import Metrics
from shared.services import Services
from shared.settings import Settings
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from workers.middleware.outcomes import MessageOutcomes
from workers.runtime import Runtime

pytestmark = pytest.mark.timeout(120)

ROWS = 20_000


class TickingClock:
    """Every reading of the monotonic clock is ``step_s`` later than the one before: a budget
    of a few steps runs out after a few thousand records (checked every 2048), every time."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.mono_s = 0.0

    def now_s(self) -> float:
        return 1_700_000_000.0 + self.mono_s

    def monotonic_s(self) -> float:
        self.mono_s += self.step_s
        return self.mono_s


class Order(MessageOutcomes):
    """Also the order in which (actor, site, job outcome) finished."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[tuple[str, str | None, str | None]] = []

    def after_process_message(self, broker: object, message: object, **kwargs: object) -> None:
        super().after_process_message(broker, message, **kwargs)  # type: ignore[arg-type]
        known = {o.message_id: o for o in self.outcomes()}[message.message_id]  # type: ignore[attr-defined]
        self.order.append((known.actor, known.site, known.outcome))


def test_a_file_needing_five_budgets_finishes_without_a_scheduler_and_others_get_turns(
        settings: Settings, redis_client: redis.Redis, s3: S3, import_bucket: str) -> None:
    # Given a site with a file that takes at least five budgets, and a small site beside it
    services = Services.build(replace(settings, import_budget_s=3), clock=TickingClock(1.0),
                              metrics=Metrics(), redis_client=redis_client, s3=s3)
    rows = "".join(f"p{i},{1_700_000_000 + i},E\n" for i in range(ROWS))
    s3.put(import_bucket, "big.csv", ("Identity,Timestamp,Event\n" + rows).encode())
    s3.put(import_bucket, "small.csv", b"Identity,Timestamp,Event\nq,1700000000,E\n")
    services.sites.create(SiteConfig(site_id="big", import_bucket=import_bucket,
                                     base_filename="big.csv"))
    services.sites.create(SiteConfig(site_id="small", import_bucket=import_bucket,
                                     base_filename="small.csv"))
    runtime = Runtime.build(services)
    order = Order()
    runtime.broker.add_middleware(order)
    # When one scan of each is queued (big first) and a worker drains the queue, no scheduler
    publisher = runtime.broker
    publisher.enqueue(scan_message("big"))
    publisher.enqueue(scan_message("small"))
    assert drain_queues(runtime.broker, timeout_s=90, worker_threads=1) is DrainEnd.EMPTY

    # Then the big site's scans ran one budget after another until the file was done
    big = [outcome for actor, site, outcome in order.order if site == "big"]
    assert len(big) >= 5 and big[-1] == "done", big
    assert set(big[:-1]) == {"budget"}, big
    # And the small site had its turn right after the big site's first budget
    assert [site for _, site, _ in order.order[:2]] == ["big", "small"]
    # And every row was imported once, and the file moved
    lines = [line for n in range(1, services.store.latest_number("big") + 1)
             for line in s3.read_bytes(settings.store_bucket,
                                       f"sites/big/revisions/{n:012d}.json").splitlines()]
    assert len(lines) == ROWS == len(set(lines))
    keys = [info.key for info in s3.list(import_bucket)]
    assert "big.csv" not in keys and any(k.startswith(COMPLETED_PREFIX) and
                                         k.endswith("/big.csv") for k in keys)
