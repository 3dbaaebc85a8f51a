"""``bucketbridge demo``: the whole flow on an embedded S3 endpoint, for a first look.

Starts moto's S3 server in this process, uses the configured Redis (or starts a private
``redis-server`` when none answers and the binary is on PATH), registers a demo site with a few
CSV files, runs one scheduler tick and the workers in-process, then shows the outcome and where
the metrics are served.  Nothing outside the embedded endpoint and a private broker namespace
is touched.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace

import click
import redis
from prometheus_client import start_http_server
from rich.console import Console

from producers.context import AppContext
from producers.drain import drain_queues
from producers.output import console as make_console
from producers.scheduler import Scheduler
from producers.sites_cmd import render_preview
from producers.sitestatus import site_status, status_rows
from shared.errors import RedisUnavailable, UserError
from shared.fleet.messages import export_message
from shared.imports.preview import preview_file
from shared.imports.sitefiles import matching_files
from shared.services import Services
from shared.store.s3 import S3, make_client
from shared.store.sites import SiteConfig
from workers.runtime import Runtime

pass_app = click.make_pass_decorator(AppContext)

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
        console.print(f"Redis: using {url}")
        yield url
        return
    except redis.RedisError:
        pass
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable(f"no Redis answers at {url} and redis-server is not on PATH: "
                               "install redis-server or set BUCKETBRIDGE_REDIS_URL")
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


@click.command()
@click.option("--keep-running", is_flag=True, help="Keep serving metrics until interrupted.")
@pass_app
def demo(app: AppContext, keep_running: bool) -> None:
    """Run the whole flow on an embedded S3 endpoint, for a first look."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise UserError("bucketbridge demo needs its embedded S3 endpoint: "
                         "pip install 'bucketbridge[demo]'") from None

    console = make_console()
    for name, value in (("AWS_ACCESS_KEY_ID", "demo"), ("AWS_SECRET_ACCESS_KEY", "demo"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
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
            _run_demo(app, svc, console, keep_running)
    finally:
        server.stop()


def _run_demo(app: AppContext, svc: Services, console: Console, keep_running: bool) -> None:
    s3 = svc.store_s3
    for bucket in (svc.settings.store_bucket, "demo-imports", "demo-export"):
        s3.create_bucket(bucket)
    _seed(s3, "demo-imports")
    site = SiteConfig(site_id="demo", import_bucket="demo-imports",
                      base_filename="accounts.csv", export_bucket="demo-export")
    if not svc.sites.exists("demo"):
        svc.sites.create(site)
    files = matching_files(s3, site)
    console.rule("1. a site is registered: demo ← s3://demo-imports/accounts*.csv")
    render_preview(console, preview_file(s3, site.import_bucket, files[0]))

    console.rule("2. the scheduler publishes the due scan message")
    namespace_prefix = f"bucketbridge-demo-{os.getpid()}"
    runtime = Runtime.build(svc, namespace=namespace_prefix)
    scheduler = Scheduler(svc.sites, svc.redis, runtime.broker.enqueue, svc.clock, svc.metrics,
                          scan_interval_s=svc.settings.scan_interval_s,
                          export_interval_s=svc.settings.export_interval_s,
                          key_prefix=namespace_prefix, broker_namespace=namespace_prefix)
    for p in scheduler.tick():
        console.print(f"published {p.job} for site {p.site} (slot {p.slot})")

    console.rule("3. workers process the queue")
    drain_queues(runtime.broker, timeout_s=120)
    console.print("queues drained")

    console.rule("4. an operator exports today's revisions now (the schedule exports up to "
                 "yesterday)")
    runtime.broker.enqueue(export_message("demo", cutoff="now"))
    # A dramatiq Worker binds itself to its broker for good: a second drain needs a new one.
    drain_queues(Runtime.build(svc, namespace=namespace_prefix).broker, timeout_s=120)
    for info in s3.list("demo-export"):
        console.print(f"  s3://demo-export/{info.key}")
    console.print(s3.read_bytes("demo-export", "index.csv").decode().rstrip())

    console.rule("5. result: bucketbridge status demo")
    for name, value in status_rows(site_status(svc, "demo")):
        console.print(f"{name:>16}: {value}")
    for info in s3.list("demo-imports"):
        console.print(f"  s3://demo-imports/{info.key}")
    first = s3.read_bytes(svc.settings.store_bucket, "sites/demo/revisions/000000000001.json")
    console.print("revision 1 begins:")
    console.print(first.decode("utf-8").splitlines()[0])

    try:
        server, _ = start_http_server(svc.settings.metrics_port, addr="127.0.0.1",
                                      registry=svc.metrics.registry)
    except OSError:  # the configured port is taken (a worker on this machine): any port will do
        server, _ = start_http_server(0, addr="127.0.0.1", registry=svc.metrics.registry)
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    console.rule(f"6. metrics are served at {url}")
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("bucketbridge_import_rows_total") or \
                    line.startswith("bucketbridge_revisions_written_total"):
                console.print(line)
    if keep_running:
        console.print("serving metrics; press Ctrl-C to stop")
        with suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
