"""Event-driven import with real processes: ``bucketbridge worker`` and ``bucketbridge listen``
on moto's S3 and SQS (moto's S3 sends bucket notifications to its SQS, as S3 does) and real
Redis, no scheduler unless a test says so.  Latency is measured from the PUT of a file to its
rows being in a revision."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import pytest

from shared.services import Services
from shared.store.revisions import EventStore, RevisionMeta
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from shared.store.sqs import Queue
from tests.conftest import Env, free_port
from tests.integration.test_invariants import (
    Proc,
    Processes,
    metric,
    read_revisions,
    scrape,
    wait_until,
)
from tests.notifications import add_site, fresh_queue, notify

pytestmark = pytest.mark.slow


@pytest.fixture
def queue(s3_endpoint: str) -> Queue:
    return fresh_queue(s3_endpoint)


def start_listener(processes: Processes, queue: Queue, name: str = "listener",
                   visibility_timeout_s: int = 120) -> Proc:
    port = free_port()
    proc = processes.start(name, "listen", metrics_port=port,
                           BUCKETBRIDGE_METRICS_PORT=str(port),
                           BUCKETBRIDGE_NOTIFY_VISIBILITY_TIMEOUT_S=str(visibility_timeout_s),
                           BUCKETBRIDGE_NOTIFY_QUEUE_URL=queue.url,
                           BUCKETBRIDGE_NOTIFY_WAIT_S="1",
                           AWS_ENDPOINT_URL_SQS=processes.env.endpoint)
    wait_until(lambda: scrape(proc) is not None, 60, "the listener's metrics", alive=proc)
    return proc


def start_worker(processes: Processes, name: str, **overrides: str) -> Proc:
    port = free_port()
    return processes.start(name, "worker", "--processes", "1", "--threads", "2",
                           metrics_port=port, BUCKETBRIDGE_METRICS_PORT=str(port),
                           PROMETHEUS_MULTIPROC_DIR=str(processes.tmp_path / f"metrics-{name}"),
                           **overrides)


def csv_file(tag: str, rows: int) -> bytes:
    lines = ["Identity,Timestamp,Event"]
    lines += [f"{tag}-{i},{1_700_000_000 + i},signed up" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Watcher:
    """Every revision of ``sites`` in the store, read once, with when it was first seen."""

    s3: S3
    bucket: str
    sites: list[str]
    seen: dict[str, tuple[RevisionMeta, float]] = field(default_factory=dict)

    newest: dict[str, int] = field(default_factory=dict)  # site → highest revision seen

    def poll(self) -> None:
        """Reads the revisions committed since the last poll (they are numbered in order)."""
        store = EventStore(self.s3, self.bucket)
        for site in self.sites:
            for info in store.objects(site, after=self.newest.get(site, 0)):
                head = self.s3.head(self.bucket, info.key)
                assert head is not None
                meta = RevisionMeta.from_metadata(head.metadata)
                self.seen[info.key] = (meta, time.monotonic())
                self.newest[site] = max(self.newest.get(site, 0), meta.number)

    def finished(self) -> dict[str, float]:
        """source key → when its last revision was seen."""
        return {meta.source_key: at for meta, at in self.seen.values() if meta.ends_file}

    def rows(self, site: str) -> list[str]:
        out = []
        for key in sorted(k for k in self.seen if f"sites/{site}/" in k):
            body = self.s3.read_bytes(self.bucket, key)
            out += [orjson.loads(line)["_p"] for line in body.splitlines() if line]
        return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


@pytest.fixture
def three_sites(services: Services, s3: S3, import_bucket: str, export_bucket: str,
                queue: Queue) -> Iterator[list[SiteConfig]]:
    sites = [add_site(services, "alpha", import_bucket, base="alpha.csv"),
             add_site(services, "beta", import_bucket, base="in/beta.csv"),
             add_site(services, "gamma", export_bucket, base="gamma.csv")]
    notify(s3.client, import_bucket, queue)
    notify(s3.client, export_bucket, queue)
    yield sites


@pytest.mark.timeout(180)
def test_twenty_uploads_to_three_sites_are_imported_within_seconds(
        env: Env, s3: S3, services: Services, queue: Queue, three_sites: list[SiteConfig],
        processes: Processes) -> None:
    # Given a worker and two listener replicas, and no scheduler
    worker = start_worker(processes, "worker")
    listeners = [start_listener(processes, queue, f"listener-{i}") for i in range(2)]
    watcher = Watcher(s3, services.settings.store_bucket, [s.site_id for s in three_sites])
    # When 20 files are uploaded, one every 0.3 s, round the sites
    put_at: dict[str, float] = {}
    for i in range(20):
        site = three_sites[i % 3]
        key = f"{site.pattern.folder}{site.pattern.stem}-{i:02d}.csv"
        s3.put(site.import_bucket, key, csv_file(f"{site.site_id}{i}", 5))
        put_at[key] = time.monotonic()
        time.sleep(0.3)
        watcher.poll()

    def all_in() -> bool:
        watcher.poll()
        return set(put_at) <= set(watcher.finished())

    wait_until(all_in, 120, "every upload imported", alive=worker, interval_s=0.2)
    # Then the p95 latency from PUT to rows in a revision is at most 30 s
    finished = watcher.finished()
    latencies = [finished[k] - put_at[k] for k in put_at]
    print(f"latency p50 {sorted(latencies)[len(latencies) // 2]:.2f} s, "
          f"p95 {p95(latencies):.2f} s, max {max(latencies):.2f} s")
    assert p95(latencies) <= 30
    # And every row is in exactly one revision
    for site in three_sites:
        rows = watcher.rows(site.site_id)
        assert len(rows) == len(set(rows)) == 5 * sum(
            1 for i in range(20) if three_sites[i % 3] is site)
    # And the two replicas handled each event once between them
    matched = 0.0
    for listener in listeners:
        samples = scrape(listener)
        assert samples is not None
        matched += metric(samples, "bucketbridge_notify_events_matched_total")
    assert matched == 20


_KILLED_LISTENER = """
import os, signal, sys
from producers.listen_cmd import build_listener, notify_queue
from shared.services import Services
from shared.settings import Settings

settings = Settings.from_env()
listener = build_listener(Services.build(settings),
                          notify_queue(settings.notify_queue_url, settings.notify_wait_s))


def die(*_args):
    print("killed before", sys.argv[1], flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


if sys.argv[1] == "publish":  # the scan claimed, not published
    listener.publish = die
else:  # the scans published, the messages not deleted
    listener.queue.delete = die
while True:
    listener.poll()
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kill_before", ["publish", "delete"])
def test_a_listener_killed_mid_batch_loses_no_upload(
        env: Env, s3: S3, services: Services, queue: Queue, three_sites: list[SiteConfig],
        processes: Processes, kill_before: str) -> None:
    # Given nine uploads to one site, all in the queue (with S3's test events: one batch)
    site = three_sites[0]
    keys = [f"alpha-{i}.csv" for i in range(9)]
    for i, key in enumerate(keys):
        s3.put(site.import_bucket, key, csv_file(f"alpha{i}", 3))
    overrides = {"BUCKETBRIDGE_NOTIFY_QUEUE_URL": queue.url, "BUCKETBRIDGE_NOTIFY_WAIT_S": "1",
                 "AWS_ENDPOINT_URL_SQS": env.endpoint,
                 "BUCKETBRIDGE_NOTIFY_VISIBILITY_TIMEOUT_S": "4"}
    worker = start_worker(processes, "worker", BUCKETBRIDGE_NOTIFY_VISIBILITY_TIMEOUT_S="4")
    # When a listener process is SIGKILLed after receiving them, before it published their
    # scan, or before it deleted them
    killed = processes._spawn("killed", ["-c", _KILLED_LISTENER, kill_before], None, overrides)
    killed.popen.wait(timeout=60)
    assert f"killed before {kill_before}" in killed.log(), killed.log()
    # And another listener runs (nothing else would publish a scan: no scheduler, no uploads)
    start_listener(processes, queue, "listener", 4)
    # Then the messages come back to it and every file is imported, each row exactly once
    watcher = Watcher(s3, services.settings.store_bucket, [site.site_id])

    def all_in() -> bool:
        watcher.poll()
        return set(keys) <= set(watcher.finished())

    wait_until(all_in, 60, "every upload imported", alive=worker, interval_s=0.3)
    rows = watcher.rows(site.site_id)
    assert len(rows) == len(set(rows)) == 27


@pytest.mark.timeout(150)
def test_with_the_listener_stopped_the_scheduler_still_imports_within_a_scan_interval(
        env: Env, s3: S3, services: Services, queue: Queue, three_sites: list[SiteConfig],
        processes: Processes) -> None:
    # Given a listener that stopped (SIGTERM: it exits cleanly), a worker and a scheduler
    listener = start_listener(processes, queue)
    assert listener.stop() == 0, listener.log()
    interval_s, tick_s = 10, 15  # the scheduler looks every TICK_INTERVAL_S (15 s)
    start_worker(processes, "worker")
    scheduler = processes.start("scheduler", "scheduler", metrics_port=None,
                                BUCKETBRIDGE_SCAN_INTERVAL_S=str(interval_s),
                                BUCKETBRIDGE_METRICS_PORT=str(free_port()))
    watcher = Watcher(s3, services.settings.store_bucket, [s.site_id for s in three_sites])
    # When a file is uploaded to every site
    put_at = time.monotonic()
    keys = []
    for site in three_sites:
        key = f"{site.pattern.folder}{site.pattern.stem}-1.csv"
        s3.put(site.import_bucket, key, csv_file(site.site_id, 4))
        keys.append(key)

    # Then the scheduler's scans import them all within one scan interval (and one tick)
    def all_in() -> bool:
        watcher.poll()
        return set(keys) <= set(watcher.finished())

    wait_until(all_in, interval_s + tick_s + 20, "the scheduler's scans", alive=scheduler,
               interval_s=0.5)
    assert time.monotonic() - put_at <= interval_s + tick_s + 20


@pytest.mark.timeout(400)
@pytest.mark.slow(60)
def test_a_burst_of_1000_files_is_imported_in_order_exactly_once_by_a_few_scans(
        env: Env, s3: S3, services: Services, import_bucket: str, queue: Queue,
        processes: Processes) -> None:
    # Given one site, notifications on, a worker and a listener, and no scheduler
    site = add_site(services, "bursty", import_bucket, base="events.csv")
    notify(s3.client, import_bucket, queue)
    worker = start_worker(processes, "worker")
    listener = start_listener(processes, queue)
    # When 1,000 files are uploaded at once
    keys = [f"events-{i:05d}.csv" for i in range(1000)]
    for i, key in enumerate(keys):
        s3.put(import_bucket, key, csv_file(f"e{i}", 3))

    # Then all are imported (in key order, each moved away once its last revision is
    # committed: the last one gone, all are), each row exactly once
    wait_until(lambda: s3.head(import_bucket, keys[-1]) is None, 360, "the burst imported",
               alive=worker, interval_s=1)
    assert not list(s3.list(import_bucket, "events-"))
    revisions = read_revisions(s3, services.settings.store_bucket, site.site_id)
    metas = [r.meta for r in revisions]
    assert [m.source_key for m in metas if m.ends_file] == keys
    assert [m.number for m in metas] == list(range(1, len(metas) + 1))
    rows = [orjson.loads(line)["_p"] for r in revisions for line in r.body.splitlines() if line]
    assert len(rows) == len(set(rows)) == 3000
    # And by at most 20 scans (the listener's and the scans' own follow-ups)
    samples = scrape(worker)
    assert samples is not None
    scans = metric(samples, "bucketbridge_job_duration_seconds_count", job_kind="scan")
    listener_samples = scrape(listener)
    assert listener_samples is not None
    published = metric(listener_samples, "bucketbridge_notify_scans_published_total")
    print(f"1,000 files: {scans:.0f} scans run, {published:.0f} published by the listener")
    assert 1 <= published <= scans <= 20
