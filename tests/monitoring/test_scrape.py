"""A real fleet, scraped by a real Prometheus.

``bucketbridge worker --processes 2 --threads 1`` and ``bucketbridge scheduler`` run as
processes against moto's S3 server and Redis; the scenario imports and exports a site and
produces every kind of trouble the dashboard shows (a bad row, a bad file, a busy lease, a
budget stop, an unknown site, a missing export bucket, retries, dead letters).  Then:

- ``/metrics`` of the worker pod has exact values, summed over its two processes, and passes
  ``promtool check metrics``, as does the scheduler's;
- a Prometheus scraping both (with the alert rules loaded) answers every dashboard query with
  data, and the alerts the scenario calls for are active.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dramatiq
import orjson
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from shared.fleet.leases import Lease
from shared.fleet.messages import IMPORT_QUEUE, SCAN_ACTOR, export_message, scan_message
from shared.fleet.publisher import Publisher
from shared.services import Services
from shared.store.revisions import revisions_prefix
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.conftest import Env, free_port, run_cli
from tests.monitoring.catalog import RULES, Query, dashboard_queries, exported_samples
from tests.monitoring.fleet import (
    Processes,
    PrometheusServer,
    Scrape,
    broker_idle,
    finite_values,
    per_process_scrapes,
    wait_until,
)
from tests.notifications import fresh_queue

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

IMPORT_BUDGET_S = 3
# Long enough that no scheduler slot ends during the test: it publishes each message once.
SCHEDULER_INTERVAL_S = 10**8

ACME_GOOD = (b"Identity,Timestamp,Event,Prop:Plan\r\n"
             b"ann,1700000000,Signed Up,pro\r\n"
             b"bob,1700000100,Paid,basic\r\n"
             b",1700000200,Paid,basic\r\n"  # no Identity: rejected, reason "identity"
             b"cid,1700000300,Visited,\r\n")
ACME_GOOD_ROWS = 3
ACME_BAD = b"Name,When\nann,yesterday\n"  # no Identity column: the file fails


def endless_gzip(rows: int) -> bytes:
    """A small .csv.gz that takes far longer than the budget to import: gzip members of
    identical rows, concatenated."""
    member = gzip.compress(b"dan,1700000000,Viewed,home\n" * 20_000, compresslevel=9)
    return gzip.compress(b"Identity,Timestamp,Event,Prop:Page\n") + member * (rows // 20_000)


def revisions(s3: S3, store: str, site: str) -> list[int]:
    """Sizes of the site's revisions in the store."""
    return [i.size_bytes for i in s3.list(store, revisions_prefix(site))
            if i.key.endswith(".json")]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.mark.slow(15)
def test_a_real_fleet_feeds_every_panel_and_alert(
        env: Env, services: Services, s3: S3, redis_client: redis.Redis, import_bucket: str,
        export_bucket: str, prometheus: str, promtool: str, processes: Processes,
        tmp_path: Path) -> None:
    store = services.settings.store_bucket
    worker_port, scheduler_port, listener_port = free_port(), free_port(), free_port()
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()

    def worker() -> Scrape:
        return Scrape.of(worker_port)

    def until(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
        wait_until(condition, timeout_s, what, processes.diagnostics)

    def settled() -> bool:
        return broker_idle(redis_client) and worker().total(
            "bucketbridge_messages_inprogress") == 0

    # Given site acme (registered by the CLI) with a good file (one bad row) and a bad file
    s3.put(import_bucket, "accounts-1.csv", ACME_GOOD)
    s3.put(import_bucket, "accounts-2.csv", ACME_BAD)
    added = run_cli(env, "sites", "add", "acme", "--import-bucket", import_bucket,
                    "--base-filename", "accounts.csv", "--export-bucket", export_bucket, "--yes")
    assert added.returncode == 0, added.stderr
    # And site slow, whose file takes far longer than the budget, and whose export bucket was
    # deleted after it was registered; it is paused, so only the messages an operator sends
    # "even if paused" run for it (its scan's continuation does not: one budget, no more)
    slow_bucket, slow_export = f"slow-{import_bucket}", f"slow-{export_bucket}"
    s3.create_bucket(slow_bucket)
    s3.create_bucket(slow_export)
    s3.put(slow_bucket, "events.csv.gz", endless_gzip(20_000_000))
    services.sites.create(SiteConfig(site_id="slow", import_bucket=slow_bucket,
                                     base_filename="events.csv", export_bucket=slow_export))
    s3.client.delete_bucket(Bucket=slow_export)
    services.sites.set_paused("slow", True)
    # And site keyed, reached through a role, while STS is unreachable for the workers
    keyed_bucket = f"keyed-{import_bucket}"
    s3.create_bucket(keyed_bucket)
    services.sites.create(SiteConfig(
        site_id="keyed", import_bucket=keyed_bucket, base_filename="accounts.csv",
        role_arn="arn:aws:iam::123456789012:role/bucketbridge-reader", external_id="keyed-1"))

    # And a worker pod (two processes) and a Prometheus scraping it and the scheduler's port
    worker_env = env.as_dict(
        BUCKETBRIDGE_METRICS_PORT=str(worker_port), PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        BUCKETBRIDGE_IMPORT_BUDGET_S=str(IMPORT_BUDGET_S),
        AWS_ENDPOINT_URL_STS=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        AWS_MAX_ATTEMPTS="1")  # botocore's own retries of STS would only slow the test
    processes.start("worker", [sys.executable, "-m", "producers", "worker", "--processes", "2",
                               "--threads", "1"], worker_env)
    prom = PrometheusServer(prometheus, tmp_path, free_port())
    prom.start(processes, prom.write_config(
        {"bucketbridge-worker": ("worker", worker_port),
         "bucketbridge-scheduler": ("scheduler", scheduler_port),
         "bucketbridge-listener": ("listener", listener_port)}, [RULES]))
    until(lambda: _answers(worker_port), "the worker pod's /metrics")
    until(prom.ready, "Prometheus to be ready")

    # When acme is scanned (CLI) and the scan is done, with its status refresh
    assert run_cli(env, "enqueue", "scan", "acme").returncode == 0
    until(lambda: worker().total("bucketbridge_import_files_completed_total") == 1
          and worker().total("bucketbridge_import_files_failed_total") == 1
          and settled(), "acme's import")
    acme_revisions = revisions(s3, store, "acme")
    assert len(acme_revisions) == 1
    # And acme is exported now (CLI)
    export_enqueued_s = time.time()
    assert run_cli(env, "enqueue", "export", "acme", "--cutoff", "now").returncode == 0
    until(lambda: worker().total("bucketbridge_export_revisions_total")
          == len(acme_revisions) and settled(), "acme's export")

    # And trouble: slow's scan holds one worker process at its budget while the other takes
    # a scan of acme whose lease is held, a scan of an unknown site, a malformed message, a
    # scan of keyed (retried fast, then dead-lettered) and an export of slow
    broker = Publisher.for_redis(services.redis)
    lease = Lease(redis_client, "import", "acme")
    assert lease.acquire()
    try:
        broker.publish(scan_message("slow", even_if_paused=True))
        until(lambda: worker().total("bucketbridge_messages_inprogress", actor_name="scan") == 1,
              "slow's scan to start")
        _enqueue_trouble(broker)
        until(lambda: worker().total("bucketbridge_lease_busy_total", job_kind="scan") == 1,
              "the scan that finds acme's lease busy")
    finally:
        lease.release()
    until(lambda: worker().total("bucketbridge_message_dead_lettered_total") == 2
          and worker().total("bucketbridge_budget_exhausted_total", job_kind="scan") == 1
          and settled(), "the trouble to be handled")
    # And Prometheus has scraped all that (later increases show in rates)
    until(lambda: prom.scalar("sum(bucketbridge_messages_total)")
          == worker().total("bucketbridge_messages_total"), "Prometheus to catch up")

    # And a scheduler publishes what is due for the active site (keyed and slow are paused)
    services.sites.set_paused("keyed", True)
    processes.start("scheduler", [sys.executable, "-m", "producers", "scheduler"], env.as_dict(
        BUCKETBRIDGE_METRICS_PORT=str(scheduler_port),
        BUCKETBRIDGE_SCAN_INTERVAL_S=str(SCHEDULER_INTERVAL_S),
        BUCKETBRIDGE_EXPORT_INTERVAL_S=str(SCHEDULER_INTERVAL_S)))
    until(lambda: _answers(scheduler_port) and Scrape.of(scheduler_port).total(
        "bucketbridge_scheduler_published_total") == 2, "the scheduler's first tick")
    # 5 scans of the trouble phase (keyed's counting its 6 attempts: 10), acme's, slow's and
    # the continuation slow's scan queued at its budget (skipped: slow is paused)
    scans_sent = 1 + 1 + 1 + 1 + 6 + 1 + 1
    until(lambda: worker().total("bucketbridge_messages_total", actor_name="scan")
          == scans_sent + 1 and settled(), "the scheduler's messages to be handled", 60)

    # And a listener reads a malformed message and an event for a key no site imports (it
    # publishes nothing: the counts above stay as they are)
    queue = fresh_queue(env.endpoint)
    processes.start("listener", [sys.executable, "-m", "producers", "listen"], env.as_dict(
        BUCKETBRIDGE_METRICS_PORT=str(listener_port), BUCKETBRIDGE_NOTIFY_QUEUE_URL=queue.url,
        BUCKETBRIDGE_NOTIFY_WAIT_S="1", AWS_ENDPOINT_URL_SQS=env.endpoint))
    queue.send("not an S3 event")
    queue.send(orjson.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {
        "bucket": {"name": import_bucket}, "object": {"key": "readme.txt"}}}).decode())
    until(lambda: _answers(listener_port) and all(
        Scrape.of(listener_port).total(name) == 1 for name in (
            "bucketbridge_notify_events_unmatched_total",
            "bucketbridge_notify_messages_malformed_total")), "the listener's messages")
    listener = Scrape.of(listener_port)
    assert (listener.total("bucketbridge_notify_messages_total"),
            listener.total("bucketbridge_notify_messages_malformed_total"),
            listener.total("bucketbridge_notify_scans_published_total")) == (2, 1, 0)

    # Then the worker pod's endpoint has the right values, summed over its processes
    w = worker()
    sched = Scrape.of(scheduler_port)
    _assert_import_and_export(w, s3, store, acme_revisions)
    _assert_fleet_series(sched, export_enqueued_s)
    _assert_message_and_job_metrics(w, sched, scans_sent)
    parts = per_process_scrapes(multiproc, tmp_path / "per-process")
    handled = {pid: p.total("bucketbridge_messages_total") for pid, p in parts.items()}
    assert len([n for n in handled.values() if n > 0]) == 2, handled
    assert sum(handled.values()) == w.total("bucketbridge_messages_total")
    # And between them the two endpoints serve every sample name the code defines, and
    # promtool accepts their expositions as they are served
    assert set(exported_samples()) - set(w.samples) - set(sched.samples) == set()
    for text in (w.text, sched.text, listener.text):
        linted = _promtool_check_metrics(promtool, text)
        assert (linted.returncode, linted.stdout, linted.stderr) == (0, "", "")

    # Then Prometheus answers every dashboard query with data
    until(lambda: prom.scalar("sum(bucketbridge_messages_total)")
          == w.total("bucketbridge_messages_total")
          and prom.scalar("sum(bucketbridge_scheduler_published_total)") == 2,
          "Prometheus to catch up")
    queries = dashboard_queries()
    wait_until(lambda: not _without_data(prom, queries), 20, "every panel to have data",
               lambda: "no data: " + "; ".join(q.where for q in _without_data(prom, queries)))
    _assert_panel_values(prom, queries)
    # And every alert rule evaluates, the scenario's alerts are active and read well
    for name, health, error in prom.rule_health():
        assert health == "ok", (name, error)
    until(lambda: _active(prom) >= EXPECTED_ALERTS, "the scenario's alerts")
    active = prom.active_alerts()
    assert not {a["labels"]["alertname"] for a in active} & QUIET_ALERTS, active
    for alert in active:
        for text in alert["annotations"].values():
            assert "<no value>" not in text and "{{" not in text, alert


def _answers(port: int) -> bool:
    try:
        Scrape.of(port)
    except OSError:
        return False
    return True


def _enqueue_trouble(broker: RedisBroker) -> None:
    broker.publish(scan_message("acme"))  # its lease is held: busy
    broker.publish(scan_message("ghost"))  # no such site
    broker.publish(dramatiq.Message(queue_name=IMPORT_QUEUE, actor_name=SCAN_ACTOR, args=(),
                                    kwargs={}, options={}))  # no site id: dead at once
    keyed = scan_message("keyed")
    broker.publish(keyed.copy(options={"min_backoff": 10, "max_backoff": 100}))
    broker.publish(export_message("slow", even_if_paused=True))  # its export bucket is gone


def _assert_import_and_export(w: Scrape, s3: S3, store: str, acme_revisions: list[int],
                              ) -> None:
    # No worker series names a site: fleet figures only
    assert not [name for name, found in w.samples.items()
                if any("site" in labels for labels, _ in found)]
    # acme: its good file's rows and rejected row, both files, one revision, all exported;
    # slow: stopped at its budget once, its file still waiting, every revision counted
    slow_revisions = revisions(s3, store, "slow")
    assert slow_revisions
    assert w.total("bucketbridge_import_rows_total") > ACME_GOOD_ROWS
    assert w.by("bucketbridge_import_rows_rejected_total", "reason") == {"identity": 1}
    assert w.total("bucketbridge_import_files_completed_total") == 1
    assert w.total("bucketbridge_import_files_failed_total") == 1
    assert w.total("bucketbridge_import_read_bytes_total") >= len(ACME_GOOD)
    assert w.by("bucketbridge_revisions_written_total", "source") == {
        "csv": len(acme_revisions) + len(slow_revisions)}
    assert w.total("bucketbridge_export_revisions_total") == len(acme_revisions)
    assert w.total("bucketbridge_export_copied_bytes_total") == sum(acme_revisions)
    assert w.by("bucketbridge_budget_exhausted_total", "job_kind") == {"scan": 1}
    assert w.by("bucketbridge_export_failures_total", "reason").keys() == {"BucketMissing"}


def _assert_fleet_series(sched: Scrape, export_enqueued_s: float) -> None:
    """The scheduler's view of the fleet, from the fleet status summary the jobs wrote."""
    assert sched.by("bucketbridge_sites", "state") == {
        "active": 1, "paused": 2, "failing": 0, "misconfigured": 0, "refused": 0}
    # backlog as of each site's last scan, paused sites included; keyed never got that far
    assert sched.by("bucketbridge_site_import_backlog_files", "site") == {"acme": 0, "slow": 1}
    assert sched.total("bucketbridge_fleet_import_backlog_files") == 1
    assert sched.by("bucketbridge_site_export_lag_revisions", "site") == {"acme": 0}
    assert export_enqueued_s <= sched.total(
        "bucketbridge_site_export_last_success_timestamp_seconds", site="acme") <= time.time()
    # acme's last scan found its lease busy; the paused sites' problems are not shown
    problems = sched.by("bucketbridge_site_problem_since_timestamp_seconds", "problem",
                        site="acme", job_kind="scan")
    assert problems.keys() == {"busy"}


def _assert_message_and_job_metrics(w: Scrape, sched: Scrape, scans_sent: int) -> None:
    scans = scans_sent + int(sched.total("bucketbridge_scheduler_published_total", job_kind="scan"))
    assert w.by("bucketbridge_messages_total", "queue_name", actor_name="scan") == {
        "imports": scans}
    # keyed's 6 attempts and the malformed message raised; 5 retries; 2 dead letters.  (A
    # retried message is enqueued twice: with its delay to <queue>.DQ, then, when due, back to
    # <queue> by the worker; only the first is a retry.)
    assert w.total("bucketbridge_message_errors_total", actor_name="scan") == 7
    assert w.total("bucketbridge_message_retries_total", actor_name="scan") == 5
    assert w.by("bucketbridge_message_dead_lettered_total", "actor_name") == {"scan": 2}
    assert w.total("bucketbridge_messages_inprogress") == 0
    # every scan but the malformed one ran the job; how they ended
    outcomes = w.by("bucketbridge_job_duration_seconds_count", "outcome", job_kind="scan")
    assert sum(outcomes.values()) == scans - 1
    assert {k: outcomes.get(k) for k in ("busy", "unknown_site", "error", "budget",
                                         "paused")} == {
        "busy": 1, "unknown_site": 1, "error": 6, "budget": 1, "paused": 1}
    assert w.by("bucketbridge_job_errors_total", "reason", job_kind="scan") == {
        "SiteNotFound": 1, "StorageUnavailable": 6}
    assert w.total("bucketbridge_lease_busy_total", job_kind="scan") == 1
    # every export message ran the export job
    exports = w.total("bucketbridge_messages_total", actor_name="export")
    assert exports >= 4
    assert w.total("bucketbridge_job_duration_seconds_count", job_kind="export") == exports
    # the scheduler: one scan per active site, one export per site with exports
    assert sched.by("bucketbridge_scheduler_published_total", "job_kind") == {
        "scan": 1, "export": 1}
    assert 0 < time.time() - sched.total("bucketbridge_scheduler_last_tick_timestamp_seconds") \
        < 60
    assert sched.by("bucketbridge_queue_messages", "queue_name", state="dead") == {
        "imports": 2, "exports": 0}


def _promtool_check_metrics(promtool: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30, check=False)


def _without_data(prom: PrometheusServer, queries: list[Query]) -> list[Query]:
    return [q for q in queries if not finite_values(prom.query(q.runnable()))]


def _assert_panel_values(prom: PrometheusServer, queries: list[Query]) -> None:
    """What some panels must show after the scenario: their logic, not only their data."""

    def values(title: str, label: str = "") -> dict[str, float]:
        (query,) = [q for q in queries if q.where.startswith(f"panel {title!r}")]
        return {r["metric"].get(label, ""): float(r["value"][1])
                for r in prom.query(query.runnable())}

    assert values("Sites failing") == {"": 0}
    assert values("Dead letters waiting") == {"": 2}
    assert values("Messages in flight") == {"": 0}
    assert values("Sites without an export for 12 h") == {"": 0}
    assert values("Largest import backlogs", "site") == {"acme": 0, "slow": 1}
    assert values("Largest export lags", "site") == {"acme": 0}
    assert 0 <= values("Scheduler: last tick")[""] < 60


# Alerts the scenario must make active (pending or firing), and alerts that must stay quiet.
EXPECTED_ALERTS = {
    ("BucketbridgeMessagesDeadLettered", "scan"),
    ("BucketbridgeImportFilesFailed", ""),
    ("BucketbridgeDeadLettersWaiting", "imports"),
}
QUIET_ALERTS = {"BucketbridgeSchedulerNotTicking", "BucketbridgeSchedulerAbsent",
                "BucketbridgeExportStale"}


def _active(prom: PrometheusServer) -> set[tuple[str, str]]:
    out = set()
    for alert in prom.active_alerts():
        labels = alert["labels"]
        subject = labels.get("site") or labels.get("actor_name") or labels.get("queue_name", "")
        out.add((labels["alertname"], subject))
    return out
