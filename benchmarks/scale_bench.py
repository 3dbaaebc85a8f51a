"""Scale benchmark: what the control plane costs for 1,000, 10,000 and 100,000 sites.

moto's S3 server runs in a process of its own; its request log counts every S3 request.
Redis is ``BUCKETBRIDGE_REDIS_URL`` (only keys under this run's own prefixes are touched).
For each N it registers N synthetic sites by writing the site index directly (the scheduler
and the fleet view read nothing else; ``site.json`` files are written for N <= 10,000) and a
fleet status summary for them, then measures:

- the scheduler: a cold start (a new process's first tick: empty slot markers, so every site
  is published; and a restart, markers present), then steady-state ticks 15 s apart (the
  clock is simulated, so every tick sees the slots that begin in its 15 s, as in production):
  wall time, S3 requests and Redis round trips per tick; publishing goes to a counter (the
  broker's cost per message is the work's, not the tick's);
- ``sites list``: time and S3 requests for N sites, its table written to /dev/null;
- the series the scheduler exports after N sites;

and, once: S3 requests and worker CPU per idle scan and idle export (the real jobs, on idle
sites), and the series a worker exports after touching its sites.

    python benchmarks/scale_bench.py [--sites 1000,10000,100000] [--ticks 40] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import redis
from harness import MotoServer

from producers.fleetgauges import FleetGauges
from producers.scheduler import Scheduler
from producers.sites_list import health_row, read_fleet
from shared.clock import FrozenClock
from shared.metrics import Metrics
from shared.services import Services
from shared.settings import Settings
from shared.store.fleetstatus import FLEET_STATUS_PREFIX, FLEET_STATUS_SHARDS, JobSummary
from shared.store.s3 import S3, make_client
from shared.store.shards import ShardedDocuments
from shared.store.siteindex import INDEX_PREFIX, INDEX_SHARDS, SiteIndex
from shared.store.sites import SiteConfig, site_config_key

IMPORTS = "bench-imports"
EXPORTS = "bench-exports"
TICK_S = 15


class RequestLog:
    """Counts the requests in moto's server log (one werkzeug line per request)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def count(self) -> int:
        return self.path.read_bytes().count(b" HTTP/1.1") if self.path.exists() else 0

    @contextlib.contextmanager
    def counting(self) -> Iterator[dict[str, int]]:
        out: dict[str, int] = {}
        before = self.count()
        yield out
        time.sleep(0.05)  # the server writes its log line after it answered
        out["requests"] = self.count() - before


class CountingConnection(redis.Connection):
    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


def _s3(endpoint: str) -> S3:
    return S3(make_client(endpoint))


def register(s3: S3, store: str, n: int, now_s: float) -> None:
    """N sites in the index (and their site.json for N <= 10,000), and a summary for each."""
    index = ShardedDocuments(s3, store, INDEX_PREFIX, INDEX_SHARDS)
    summary = ShardedDocuments(s3, store, FLEET_STATUS_PREFIX, FLEET_STATUS_SHARDS)
    index_shards: dict[int, dict[str, Any]] = {i: {} for i in range(INDEX_SHARDS)}
    summary_shards: dict[int, dict[str, Any]] = {i: {} for i in range(FLEET_STATUS_SHARDS)}
    configs: list[SiteConfig] = []
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_s - 1800))
    for i in range(n):
        site = f"site{i:06d}"
        config = SiteConfig(site_id=site, import_bucket=IMPORTS, base_filename=f"s{i}.csv",
                            export_bucket=EXPORTS if i % 2 else None, export_prefix=f"{site}/")
        if n <= 10_000:
            configs.append(config)
        index_shards[index.shard_of(site)][site] = {"config": asdict(config)}
        failing = i % 97 == 0
        jobs = {"scan": JobSummary(outcome="error" if failing else "done", at=at, since=at,
                                   error="AccessDenied" if failing else None,
                                   error_at=at if failing else None, backlog_files=i % 5,
                                   backlog_bytes=1000 * (i % 5), success_at=at).as_json()}
        if i % 2:
            jobs["export"] = JobSummary(outcome="done", at=at, since=at, success_at=at,
                                        lag_revisions=i % 13).as_json()
        summary_shards[summary.shard_of(site)][site] = jobs
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda c: s3.put(store, site_config_key(c.site_id), c.to_json()),
                      configs))
    for number, entries in index_shards.items():
        index.write(number, entries)
    for number, entries in summary_shards.items():
        summary.write(number, entries)
    SiteIndex(s3, store).mark_changed()


def bench_scheduler(endpoint: str, store: str, redis_url: str, n: int, ticks: int,
                    log: RequestLog) -> dict[str, Any]:
    s3 = _s3(endpoint)
    client = redis.Redis.from_url(redis_url)
    client.connection_pool.connection_class = CountingConnection
    prefix = f"bench-scale:{uuid.uuid4().hex[:8]}:slot"
    clock = FrozenClock(time.time())
    published: list[Any] = []
    settings = Settings(store_bucket=store, s3_endpoint_url=endpoint)
    services = Services.build(settings, clock=clock, metrics=Metrics(), redis_client=client,
                              s3=s3)

    def scheduler() -> Scheduler:
        return Scheduler(services.sites, client, published.append, clock, Metrics(),
                         scan_interval_s=3600, export_interval_s=7200, key_prefix=prefix,
                         fleet_status=None)

    out: dict[str, Any] = {"sites": n}
    first = scheduler()
    with log.counting() as counted:
        CountingConnection.sent, started = 0, time.perf_counter()
        first.tick()
        out["cold_tick_s"] = time.perf_counter() - started
    out["cold_published"] = len(published)
    out["cold_requests"] = counted["requests"]
    out["cold_redis_round_trips"] = CountingConnection.sent
    # A restart: a new process, the slot markers in Redis
    clock.advance(TICK_S)
    with log.counting() as counted:
        CountingConnection.sent, started = 0, time.perf_counter()
        restarted = scheduler()
        restarted.tick()
        out["restart_tick_s"] = time.perf_counter() - started
    out["restart_requests"] = counted["requests"]
    out["restart_redis_round_trips"] = CountingConnection.sent
    # Steady state
    published.clear()
    times, round_trips = [], []
    with log.counting() as counted:
        for _ in range(ticks):
            clock.advance(TICK_S)
            CountingConnection.sent, started = 0, time.perf_counter()
            restarted.tick()
            times.append(time.perf_counter() - started)
            round_trips.append(CountingConnection.sent)
    out["steady_tick_s_median"] = statistics.median(times)
    out["steady_tick_s_max"] = max(times)
    out["steady_requests_per_tick"] = counted["requests"] / ticks
    out["steady_redis_round_trips_median"] = statistics.median(round_trips)
    out["steady_published_per_tick"] = len(published) / ticks
    for key in client.scan_iter(f"{prefix}:*", count=10_000):
        client.delete(key)
    return out


def bench_yardstick(endpoint: str, store: str, log: RequestLog) -> dict[str, Any]:
    """The old way to the whole fleet (as ticks and ``sites list`` did it before the index):
    list ``sites/`` and read every ``site.json``."""
    from shared.store.sites import SiteRegistry

    with log.counting() as counted:
        started = time.perf_counter()
        count = sum(1 for _ in SiteRegistry(_s3(endpoint), store).all())
        elapsed = time.perf_counter() - started
    return {"yardstick_sites": count, "yardstick_read_all_s": elapsed,
            "yardstick_requests": counted["requests"]}


def bench_list(endpoint: str, store: str, redis_url: str, n: int,
               log: RequestLog) -> dict[str, Any]:
    s3 = _s3(endpoint)
    settings = Settings(store_bucket=store, s3_endpoint_url=endpoint, redis_url=redis_url)
    services = Services.build(settings, s3=s3)
    with log.counting() as counted:
        started = time.perf_counter()
        rows = read_fleet(services)
        now_s = time.time()
        with contextlib.redirect_stdout(io.StringIO()) as sink:
            for h in rows:
                print("\t".join(health_row(h, now_s)))
        elapsed = time.perf_counter() - started
    assert len(rows) == n and len(sink.getvalue().splitlines()) == n
    metrics = Metrics()
    FleetGauges(metrics, 20).publish(rows)
    series = sum(len(f.samples) for f in metrics.registry.collect())
    return {"list_s": elapsed, "list_requests": counted["requests"],
            "scheduler_series": series}


def bench_idle(endpoint: str, store: str, redis_url: str, log: RequestLog,
               sites: int = 40) -> dict[str, Any]:
    """Idle scans and exports of real sites through the worker's jobs."""
    from shared.exports.exporter import Exporter
    from shared.imports.scan import Importer
    from workers.jobs.export import ExportJob
    from workers.jobs.scan import ScanJob

    s3 = _s3(endpoint)
    settings = Settings(store_bucket=store, s3_endpoint_url=endpoint, redis_url=redis_url)
    metrics = Metrics()
    services = Services.build(settings, metrics=metrics, s3=s3)
    scan = ScanJob(services, Importer(services.store, services.reports, services.tail_cache,
                                      services.clock, metrics))
    export = ExportJob(services, Exporter(services.store, services.ledger,
                                          services.tail_cache, services.clock, metrics),
                       lambda _m: None)
    names = [f"idle{i:04d}" for i in range(sites)]
    for site in names:
        services.sites.create(SiteConfig(site_id=site, import_bucket=IMPORTS,
                                         base_filename=f"{site}.csv", export_bucket=EXPORTS,
                                         export_prefix=f"{site}/"))
        scan(site), export(site), export(site)  # first runs: claims, statuses, files

    def per_message(job: Callable[[str], object]) -> tuple[float, float]:
        cpu = []
        with log.counting() as counted:
            for site in names:
                started = time.thread_time()
                job(site)
                cpu.append(time.thread_time() - started)
        return counted["requests"] / len(names), statistics.median(cpu)

    scan_requests, scan_cpu = per_message(scan)
    export_requests, export_cpu = per_message(export)
    series = sum(len(f.samples) for f in metrics.registry.collect())
    return {"idle_sites": sites, "idle_scan_requests": scan_requests,
            "idle_scan_cpu_ms": scan_cpu * 1000, "idle_export_requests": export_requests,
            "idle_export_cpu_ms": export_cpu * 1000, "worker_series": series}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="1000,10000,100000")
    parser.add_argument("--ticks", type=int, default=40)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    redis_url = os.environ.get("BUCKETBRIDGE_REDIS_URL", "redis://127.0.0.1:6379/0")
    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    results: dict[str, Any] = {"sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        server = MotoServer(Path(tmp) / "moto.log")
        log = RequestLog(Path(tmp) / "moto.log")
        try:
            s3 = _s3(server.endpoint)
            for bucket in (IMPORTS, EXPORTS):
                s3.create_bucket(bucket)
            idle_store = "bench-idle-store"
            s3.create_bucket(idle_store)
            results["idle"] = bench_idle(server.endpoint, idle_store, redis_url, log)
            print(json.dumps(results["idle"]), flush=True)
            for n in (int(x) for x in args.sites.split(",")):
                store = f"bench-scale-{n}"
                s3.create_bucket(store)
                started = time.perf_counter()
                register(s3, store, n, time.time())
                row = {"register_s": time.perf_counter() - started}
                row.update(bench_scheduler(server.endpoint, store, redis_url, n, args.ticks,
                                           log))
                row.update(bench_list(server.endpoint, store, redis_url, n, log))
                if n <= 10_000:
                    row.update(bench_yardstick(server.endpoint, store, log))
                results["sizes"].append(row)
                print(json.dumps(row), flush=True)
        finally:
            server.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
