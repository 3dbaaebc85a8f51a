"""Event-driven import benchmark: from the PUT of a file to its rows in a revision.

Runs a fleet without a scheduler — ``bucketbridge worker --processes 1 --threads 2`` and
``bucketbridge listen`` as processes — against moto's S3 and SQS (one server, in a process of
its own; moto's S3 sends bucket notifications to its SQS as S3 does) and the Redis database of
``--redis-url`` (flushed first: give it a database of its own).

1. Latency: ``--uploads`` files (20) to four sites in two buckets, one every ``--spacing-s``
   (1 s); for each, the seconds from its PUT to the revision that finishes it being listed in
   the store (polled every 0.1 s).  The yardstick, measured in the same run: the same uploads
   with the listener stopped and a scan published by hand right after each PUT (``enqueue
   scan``'s path), the fastest a scan can follow an upload.
2. Burst: ``--burst`` files (1,000) uploaded at once to one site; the seconds until the last
   is imported, whether every row is in exactly one revision and the files were imported in
   key order, and how many scans the fleet ran (the worker's ``job_duration`` count) and the
   listener published.

    python benchmarks/notify_bench.py --redis-url redis://127.0.0.1:6379/7 [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import redis
from harness import MotoServer, _free_port

from shared.fleet.messages import scan_message
from shared.fleet.publisher import Publisher
from shared.store.claims import ClaimStore, Locations
from shared.store.revisions import EventStore, RevisionMeta
from shared.store.s3 import S3, make_client
from shared.store.sites import SiteConfig, SiteRegistry
from shared.store.sqs import Queue

REPO = Path(__file__).resolve().parents[1]


class Fleet:
    """The worker and listener processes, and what the benchmark reads back."""

    def __init__(self, endpoint: str, redis_url: str, store: str, queue_url: str,
                 scratch: Path) -> None:
        self.scratch = scratch
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BUCKETBRIDGE_")}
        self.env.update({
            "BUCKETBRIDGE_REDIS_URL": redis_url, "BUCKETBRIDGE_STORE_BUCKET": store,
            "BUCKETBRIDGE_NOTIFY_QUEUE_URL": queue_url, "BUCKETBRIDGE_NOTIFY_WAIT_S": "1",
            "AWS_ENDPOINT_URL_S3": endpoint, "AWS_ENDPOINT_URL_SQS": endpoint,
            "AWS_ENDPOINT_URL_STS": endpoint, "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}

    def start(self, name: str, *args: str) -> None:
        port = _free_port()
        env = dict(self.env, BUCKETBRIDGE_METRICS_PORT=str(port))
        if args[0] == "worker":
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.scratch / f"metrics-{name}")
        with (self.scratch / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "producers", *args], env=env, cwd=REPO, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        self.ports[name] = port
        deadline = time.monotonic() + 60
        while self.metrics(name) is None:
            if time.monotonic() > deadline or self.procs[name].poll() is not None:
                log = (self.scratch / f"{name}.log").read_text(errors="replace")
                raise RuntimeError(f"{name} did not start:\n{log[-3000:]}")
            time.sleep(0.2)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def metrics(self, name: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[name]}/metrics",
                                        timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            return None

    def total(self, name: str, metric: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        text = self.metrics(name) or ""
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == metric and labels.items() <= s.labels.items())


class Revisions:
    """Every revision of ``sites`` in the store: when first seen, what it finishes."""

    def __init__(self, s3: S3, store: str, sites: list[str]) -> None:
        self.s3, self.store, self.sites = s3, store, sites
        self.seen: dict[str, tuple[RevisionMeta, float]] = {}

    def poll(self) -> None:
        events = EventStore(self.s3, self.store)
        for site in self.sites:
            for info in events.objects(site):
                if info.key not in self.seen:
                    head = self.s3.head(self.store, info.key)
                    if head is not None:
                        self.seen[info.key] = (RevisionMeta.from_metadata(head.metadata),
                                               time.monotonic())

    def finished(self) -> dict[str, float]:
        return {m.source_key: at for m, at in self.seen.values() if m.ends_file}

    def wait(self, keys: set[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not keys <= set(self.finished()):
            if time.monotonic() > deadline:
                missing = sorted(keys - set(self.finished()))
                raise RuntimeError(f"{len(missing)} file(s) not imported: {missing[:5]}")
            time.sleep(0.1)
            self.poll()


def csv_body(tag: str, rows: int) -> bytes:
    lines = ["Identity,Timestamp,Event"] + [f"{tag}-{i},{1_700_000_000 + i},Signed Up"
                                            for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def add_site(s3: S3, store: str, site: str, bucket: str, base: str) -> SiteConfig:
    config = SiteConfig(site_id=site, import_bucket=bucket, base_filename=base)
    registry = SiteRegistry(s3, store)
    ClaimStore(s3, store, registry, _Clock()).hold(Locations.of(config))
    registry.create(config)
    return config


class _Clock:
    def now_s(self) -> float:
        return time.time()

    def monotonic_s(self) -> float:
        return time.monotonic()


def notify(s3: S3, bucket: str, queue: Queue) -> None:
    s3.client.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"Id": "bucketbridge", "QueueArn": queue.arn(),
                                 "Events": ["s3:ObjectCreated:*"]}]})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(q * len(ordered)) - 1)]


def latency(s3: S3, store: str, sites: list[SiteConfig], uploads: int, spacing_s: float,
            label: str, publish: Publisher | None) -> dict[str, Any]:
    watch = Revisions(s3, store, [s.site_id for s in sites])
    put_at: dict[str, float] = {}
    for i in range(uploads):
        site = sites[i % len(sites)]
        key = f"{site.pattern.stem}-{label}-{i:03d}.csv"
        s3.put(site.import_bucket, key, csv_body(f"{label}{i}", 10))
        put_at[key] = time.monotonic()
        if publish is not None:
            publish.publish(scan_message(site.site_id))
        end = time.monotonic() + spacing_s
        while time.monotonic() < end:
            watch.poll()
            time.sleep(0.05)
    watch.wait(set(put_at), 120)
    done = watch.finished()
    seconds = [done[k] - put_at[k] for k in put_at]
    return {"uploads": uploads, "p50_s": round(statistics.median(seconds), 3),
            "p95_s": round(percentile(seconds, 0.95), 3), "max_s": round(max(seconds), 3)}


def burst(s3: S3, store: str, site: SiteConfig, files: int, fleet: Fleet) -> dict[str, Any]:
    watch = Revisions(s3, store, [site.site_id])
    scans_before = fleet.total("worker", "bucketbridge_job_duration_seconds_count",
                               job_kind="scan")
    published_before = fleet.total("listener", "bucketbridge_notify_scans_published_total")
    keys = [f"{site.pattern.stem}-{i:05d}.csv" for i in range(files)]
    start = time.monotonic()
    for i, key in enumerate(keys):
        s3.put(site.import_bucket, key, csv_body(f"b{i}", 3))
    uploaded_s = time.monotonic() - start
    watch.wait(set(keys), 600)
    imported_s = time.monotonic() - start
    time.sleep(3)  # let the last scans end and be counted
    metas = sorted((m for m, _ in watch.seen.values()), key=lambda m: m.number)
    order = [m.source_key for m in metas if m.ends_file]
    rows = []
    for key in sorted(watch.seen):
        body = s3.read_bytes(store, key)
        rows += [orjson.loads(line)["_p"] for line in body.splitlines() if line]
    return {
        "files": files, "upload_s": round(uploaded_s, 2),
        "all_imported_s": round(imported_s, 2),
        "rows_exactly_once": len(rows) == len(set(rows)) == 3 * files,
        "in_key_order": order == keys,
        "scans_run": int(fleet.total("worker", "bucketbridge_job_duration_seconds_count",
                                     job_kind="scan") - scans_before),
        "scans_published_by_listener": int(fleet.total(
            "listener", "bucketbridge_notify_scans_published_total") - published_before),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True,
                        help="a Redis database of its own: it is flushed")
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--spacing-s", type=float, default=1.0)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    redis.Redis.from_url(args.redis_url).flushdb()
    with tempfile.TemporaryDirectory(prefix="notify-bench-") as tmp:
        scratch = Path(tmp)
        moto = MotoServer(scratch / "moto.log")
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_DEFAULT_REGION="us-east-1")
        fleet: Fleet | None = None
        try:
            s3 = S3(make_client(moto.endpoint))
            tag = uuid.uuid4().hex[:8]
            store, b1, b2 = f"store-{tag}", f"imports-{tag}", f"other-{tag}"
            for bucket in (store, b1, b2):
                s3.create_bucket(bucket)
            import boto3

            sqs = boto3.client("sqs", endpoint_url=moto.endpoint, region_name="us-east-1")
            queue = Queue(sqs, sqs.create_queue(QueueName=f"notify-{tag}")["QueueUrl"])
            sites = [add_site(s3, store, "alpha", b1, "alpha.csv"),
                     add_site(s3, store, "beta", b1, "beta.csv"),
                     add_site(s3, store, "gamma", b2, "gamma.csv"),
                     add_site(s3, store, "delta", b2, "delta.csv")]
            bursty = add_site(s3, store, "bursty", b2, "events.csv")
            notify(s3, b1, queue)
            notify(s3, b2, queue)
            fleet = Fleet(moto.endpoint, args.redis_url, store, queue.url, scratch)
            fleet.start("worker", "worker", "--processes", "1", "--threads", "2")
            # The yardstick first, without a listener: a scan published right after the PUT.
            publisher = Publisher.for_redis(redis.Redis.from_url(args.redis_url))
            direct = latency(s3, store, sites, args.uploads, args.spacing_s, "direct",
                             publisher)
            while queue.receive(wait_s=0):  # the yardstick's events: not the listener's
                pass
            fleet.start("listener", "listen")
            listened = latency(s3, store, sites, args.uploads, args.spacing_s, "listen", None)
            burst_result = burst(s3, store, bursty, args.burst, fleet) if args.burst else None
        finally:
            if fleet is not None:
                fleet.stop_all()
            moto.stop()
    results = {"latency_listener": listened, "latency_scan_published_at_put": direct,
               "p95_ratio_listener_to_yardstick": round(listened["p95_s"] / direct["p95_s"], 2),
               "burst": burst_result}
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    ok = listened["p95_s"] <= 30 and (burst_result is None or (
        burst_result["rows_exactly_once"] and burst_result["in_key_order"]
        and burst_result["scans_run"] <= 20))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
