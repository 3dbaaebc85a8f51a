"""``bucketbridge demo``: the whole flow on an embedded S3 endpoint, for a first look.

Starts moto's S3 server in this process, uses the configured Redis (or starts a private
``redis-server`` when none answers and the binary is on PATH), registers a demo site with a few
CSV files, runs one scheduler tick and the workers in-process, then shows the outcome and the
metrics.  With ``--keep-running`` the endpoint and a metrics server stay up until Ctrl-C, and it
prints the environment that points the CLI at them.  In the user's Redis it uses a private
broker namespace and slot prefix, and removes every key it wrote before it exits.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any

import click
import redis
from prometheus_client import generate_latest, start_http_server
from rich.console import Console

from producers.context import AppContext
from producers.drain import drain_queues
from producers.output import console as make_console
from producers.output import section
from producers.scheduler import Scheduler
from producers.siteprobe import render_preview
from producers.sitestatus import site_status, status_rows
from shared.errors import RedisUnavailable, UserError
from shared.fleet.messages import export_message
from shared.imports.preview import preview_file
from shared.imports.sitefiles import matching_files
from shared.services import Services
from shared.settings import mask_url
from shared.store.s3 import S3, make_client
from shared.store.sites import SiteConfig
from workers.runtime import Runtime

pass_app = click.make_pass_decorator(AppContext)

DEMO_SITE = "demo"
DEMO_IMPORTS = "demo-imports"
DEMO_EXPORT = "demo-export"
# The embedded endpoint takes any credentials; these are set only where none are.
DEMO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
                    "AWS_DEFAULT_REGION": "us-east-1"}

DEMO_FILES = {
    "accounts-2024-01.csv": (
        "Identity,Timestamp,Event,Prop:Plan,Prop:Amount\r\n"
        "alice@example.com,1704067200,Signed Up,free,\r\n"
        "bob@example.com,1704070800,Signed Up,pro,\r\n"
        "alice@example.com,1704153600,Upgraded,pro,49\r\n"
        ",1704157200,Signed Up,free,\r\n"  # no identity: reported, skipped
        "carol@example.com,1704240000,Signed Up,\"team, annual\",\r\n"
    ),
    "accounts-2024-02.csv.gz": (
        "Identity,Timestamp,Event,Prop:Plan,Prop:Amount\n"
        "bob@example.com,1706745600,Paid,pro,49\n"
        "carol@example.com,1706832000,,enterprise,\n"
        "dave@example.com,not-a-time,Signed Up,free,\n"  # bad timestamp: reported, skipped
    ),
    "accounts-aliases.csv": (
        "Identity,Alias\n"
        "bob@example.com,robert@example.com\n"
    ),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _redis_for_demo(url: str, console: Console) -> Iterator[str]:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        console.print(f"Redis: using {mask_url(url)}")
        yield url
        return
    except redis.RedisError:
        pass
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable(f"no Redis answers at {mask_url(url)} and redis-server is not "
                               "on PATH: install redis-server or set BUCKETBRIDGE_REDIS_URL")
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="bucketbridge-demo-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    private = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                redis.Redis.from_url(private).ping()
                break
            except redis.RedisError:
                time.sleep(0.05)
        console.print(f"Redis: started a private redis-server on port {port}")
        yield private
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _seed(s3: S3, bucket: str) -> None:
    for name, text in DEMO_FILES.items():
        body = text.encode("utf-8")
        s3.put(bucket, name, gzip.compress(body) if name.endswith(".gz") else body)


def _cleanup_redis(client: redis.Redis, namespace: str, store_bucket: str) -> int:
    """Delete every key the demo wrote in Redis (its broker namespace and scheduler slots,
    failed attempts, hints about its store); returns how many."""
    patterns = (f"{namespace}:*", f"bucketbridge:dead-letter-attempts:{namespace}:*",
                f"bucketbridge:cache:*:{store_bucket}:*")
    keys = {key for pattern in patterns for key in client.scan_iter(match=pattern, count=500)}
    if keys:
        client.delete(*keys)
    return len(keys)


@click.command()
@click.option("--keep-running", is_flag=True,
              help="Keep the S3 endpoint and the metrics up until Ctrl-C, to explore them.")
@pass_app
def demo(app: AppContext, keep_running: bool) -> None:
    """Run the whole flow on an embedded S3 endpoint, for a first look."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise UserError("bucketbridge demo needs its embedded S3 endpoint: "
                        "pip install 'bucketbridge[demo]'") from None

    console = make_console()
    for name, value in DEMO_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    console.print(f"S3: embedded endpoint at {endpoint}")
    try:
        with _redis_for_demo(app.settings.redis_url, console) as redis_url:
            settings = replace(app.settings, redis_url=redis_url, s3_endpoint_url=endpoint,
                               store_bucket=f"demo-store-{uuid.uuid4().hex[:8]}",
                               import_budget_s=60)
            svc = Services.build(settings, s3=S3(make_client(endpoint)))
            namespace = f"bucketbridge-demo-{os.getpid()}"
            try:
                _run_demo(svc, console, namespace)
                _explore(svc, console, keep_running)
            finally:
                removed = _cleanup_redis(svc.redis, namespace, settings.store_bucket)
                console.print(f"Redis: the demo's {removed} key(s) removed from "
                              f"{mask_url(redis_url)}")
    finally:
        server.stop()


def _run_demo(svc: Services, console: Console, namespace: str) -> None:
    s3 = svc.store_s3
    for bucket in (svc.settings.store_bucket, DEMO_IMPORTS, DEMO_EXPORT):
        s3.create_bucket(bucket)
    _seed(s3, DEMO_IMPORTS)
    site = SiteConfig(site_id=DEMO_SITE, import_bucket=DEMO_IMPORTS,
                      base_filename="accounts.csv", export_bucket=DEMO_EXPORT)
    if not svc.sites.exists(DEMO_SITE):
        svc.sites.create(site)
    files = matching_files(s3, site)
    section(f"1. a site is registered: {DEMO_SITE} ← s3://{DEMO_IMPORTS}/accounts*.csv")
    render_preview(preview_file(s3, site.import_bucket, files[0], svc.clock))

    section("2. the scheduler publishes the due scan message")
    runtime = Runtime.build(svc, namespace=namespace)
    scheduler = Scheduler(svc.sites, svc.redis, runtime.broker.enqueue, svc.clock, svc.metrics,
                          scan_interval_s=svc.settings.scan_interval_s,
                          export_interval_s=svc.settings.export_interval_s,
                          key_prefix=namespace, broker_namespace=namespace)
    for p in scheduler.tick():
        console.print(f"published {p.job} for site {p.site} (slot {p.slot})")

    section("3. workers process the queue")
    drain_queues(runtime.broker, timeout_s=120)
    console.print("queues drained")

    section("4. an operator exports today's revisions now (the schedule exports up to "
                 "yesterday)")
    runtime.broker.enqueue(export_message(DEMO_SITE, cutoff="now"))
    # A dramatiq Worker binds itself to its broker for good: a second drain needs a new one.
    drain_queues(Runtime.build(svc, namespace=namespace).broker, timeout_s=120)
    for info in s3.list(DEMO_EXPORT):
        console.print(f"  s3://{DEMO_EXPORT}/{info.key}")
    console.print(s3.read_bytes(DEMO_EXPORT, "index.csv").decode().rstrip())

    section(f"5. result: bucketbridge status {DEMO_SITE}")
    for name, value in status_rows(site_status(svc, DEMO_SITE)):
        console.print(f"{name:>16}: {value}")
    for info in s3.list(DEMO_IMPORTS):
        console.print(f"  s3://{DEMO_IMPORTS}/{info.key}")
    first = s3.read_bytes(svc.settings.store_bucket,
                          f"sites/{DEMO_SITE}/revisions/000000000001.json")
    console.print("revision 1 begins:")
    console.print(first.decode("utf-8").splitlines()[0])


def _explore(svc: Services, console: Console, keep_running: bool) -> None:
    """How to reach what the demo built; with ``keep_running``, until Ctrl-C."""
    settings = svc.settings
    section("6. metrics")
    for line in generate_latest(svc.metrics.registry).decode().splitlines():
        if line.startswith(("bucketbridge_import_rows_total",
                            "bucketbridge_revisions_written_total")):
            console.print(line)
    if not keep_running:
        console.print("The embedded S3 endpoint, its buckets and the metrics end with the demo: "
                      "run bucketbridge demo --keep-running to explore them.")
        return
    server, _ = _serve_metrics(svc)
    section("7. explore it (the demo keeps running)")
    console.print(f"metrics:      http://127.0.0.1:{server.server_port}/metrics")
    console.print(f"store bucket: s3://{settings.store_bucket} (imports: s3://{DEMO_IMPORTS}, "
                  f"export: s3://{DEMO_EXPORT})")
    console.print("in another shell:")
    exports = {**DEMO_CREDENTIALS, "AWS_ENDPOINT_URL_S3": settings.s3_endpoint_url or "",
               "BUCKETBRIDGE_STORE_BUCKET": settings.store_bucket,
               "BUCKETBRIDGE_REDIS_URL": mask_url(settings.redis_url)}
    for name, value in exports.items():
        console.print(f"  export {name}={value}")
    console.print(f"  bucketbridge status {DEMO_SITE}")
    console.print("Press Ctrl-C to stop the demo (the endpoint, its buckets and the metrics "
                  "go with it).")
    try:
        with suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    finally:
        server.shutdown()


def _serve_metrics(svc: Services) -> tuple[Any, Any]:
    try:
        return start_http_server(svc.settings.metrics_port, addr="127.0.0.1",
                                 registry=svc.metrics.registry)
    except OSError:  # the configured port is taken (a worker on this machine): any port will do
        return start_http_server(0, addr="127.0.0.1", registry=svc.metrics.registry)
