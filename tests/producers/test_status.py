"""``bucketbridge status SITE`` answers "what is happening now": running (since when, which
worker process), queued, next scheduled scan and export, the current file's progress with an
ETA, last success and last error with their ages (resolved when older than the success),
human sizes; ``--json`` with the same fields; ``--watch``."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from shared.fleet.notices import Notices
from shared.fleet.slots import slot_of, slot_start_s
from shared.formats.times import iso_utc, parse_iso_utc
from shared.imports.cursor import Revisions
from shared.imports.progress import recent_rate
from shared.services import Services
from shared.store.revisions import FileEnd, RevisionMeta, revision_key
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.conftest import REPO, Env, free_port, invoke_cli

pytestmark = pytest.mark.timeout(120)

GOOD = b"Identity,Timestamp,Event\na,1700000000,E\nb,1700000001,E\n"
T0 = 1_700_000_000


def status_json(env: Env, site: str = "acme") -> dict[str, Any]:
    out = invoke_cli(env, "status", site, "--json")
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = orjson.loads(out.stdout)
    return data


def status_rows(env: Env, site: str = "acme") -> dict[str, str]:
    out = invoke_cli(env, "status", site)
    assert out.returncode == 0, out.stderr
    return dict(line.split("\t", 1) for line in out.stdout.splitlines())


def make_site(services: Services, bucket: str, **kwargs: Any) -> SiteConfig:
    config = SiteConfig(site_id="acme", import_bucket=bucket, base_filename="accounts.csv",
                        **kwargs)
    services.sites.create(config)
    return config


def test_a_site_never_scanned_shows_its_backlog_next_file_and_next_runs(
        env: Env, services: Services, s3: S3, import_bucket: str, export_bucket: str) -> None:
    # Given an exporting site with two files waiting (2 MB), never scanned
    s3.put(import_bucket, "accounts-2.csv", GOOD)
    s3.put(import_bucket, "accounts-1.csv", GOOD + b"c,1700000002,E\n" * 140_000)
    make_site(services, import_bucket, export_bucket=export_bucket)
    # When its status is asked for
    data = status_json(env)
    rows = status_rows(env)
    # Then nothing runs or waits, the scheduler publishes its scan and export on its next tick
    assert (data["running"], data["queued"], data["paused"]) == ([], [], False)
    assert data["schedule"] == {"next_scan_at": data["checked_at"],
                                "next_export_at": data["checked_at"]}
    imp = data["import"]
    size = len(GOOD) + len(b"c,1700000002,E\n") * 140_000
    assert (imp["current_file"], imp["backlog_files"], imp["backlog_bytes"]) == (
        "accounts-1.csv", 2, size + len(GOOD))
    assert imp["progress"] == {"size_bytes": size, "gzipped": False, "bytes_done": 0,
                               "rows_done": 0, "percent": 0.0, "rate_bytes_per_s": None,
                               "eta_s": None}
    assert (imp["last_success_at"], imp["last_error"], imp["waiting_for_first_file"]) == (
        None, None, False)
    # And people read the same, with sizes in units
    assert rows["state"] == "active"
    assert (rows["running"], rows["queued"]) == ("-", "none")
    assert rows["next scan"] == rows["next export"] == "due now (the scheduler's next tick)"
    assert rows["backlog"] == "2 file(s), 2.1 MB"
    assert rows["current file"] == "accounts-1.csv (2.1 MB), from its first record"
    assert (rows["last scan"], rows["last success"], rows["last error"]) == ("never", "never",
                                                                             "-")


def test_after_the_schedulers_tick_the_next_runs_are_the_next_slots(
        env: Env, services: Services, import_bucket: str, export_bucket: str) -> None:
    make_site(services, import_bucket, export_bucket=export_bucket)
    assert invoke_cli(env, "scheduler", "--once").returncode == 0
    data = status_json(env)
    now_s = parse_iso_utc(data["checked_at"])
    scan_s = slot_start_s("acme", slot_of("acme", now_s, 3600) + 1, 3600)
    export_s = slot_start_s("acme", slot_of("acme", now_s, 7200) + 1, 7200)
    assert data["schedule"] == {"next_scan_at": iso_utc(scan_s),
                                "next_export_at": iso_utc(export_s)}
    assert 0 < scan_s - now_s <= 3600 and 0 < export_s - now_s <= 7200
    # And the queued messages of the site are listed
    assert [(q["actor"], q["state"]) for q in data["queued"]] == [("scan", "ready"),
                                                                  ("export", "ready")]
    rows = status_rows(env)
    assert rows["queued"] == "2: scan (ready), export (ready)"
    assert re.fullmatch(r"\S+Z \(in (\d+m \d\ds|\d+s)\)", rows["next scan"]), rows["next scan"]


def test_notifications_matched_to_the_site_are_shown_with_when_and_how_many(
        env: Env, services: Services, import_bucket: str) -> None:
    make_site(services, import_bucket)
    rows = status_rows(env)
    assert rows["notifications"].startswith("none since ")
    # Given the listener matched five events to the site a minute ago, and two just now
    notices = Notices(services.redis)
    notices.arrived({"acme": 5, "other": 1}, time.time() - 60)
    notices.arrived({"acme": 2}, time.time())
    # Then status says when the last arrived and how many recently
    data = status_json(env)["notifications"]
    assert data["recent"] == 7
    assert time.time() - parse_iso_utc(data["last_at"]) < 10
    assert re.fullmatch(r"last \S+Z \(\d+s ago\); 7 since \d\d:00 UTC",
                        status_rows(env)["notifications"]), status_rows(env)


def test_a_paused_site_is_not_scheduled(env: Env, services: Services, import_bucket: str) -> None:
    make_site(services, import_bucket, paused=True)
    data = status_json(env)
    assert data["schedule"] == {"next_scan_at": None, "next_export_at": None}
    rows = status_rows(env)
    assert (rows["state"], rows["next scan"]) == ("paused, waiting for first file",
                                                  "not scheduled (paused)")


def test_an_error_older_than_the_last_success_is_shown_resolved(
        env: Env, services: Services, s3: S3) -> None:
    # Given a scan that failed (its bucket missing), then a successful one
    bucket = f"late-{uuid.uuid4().hex[:12]}"
    make_site(services, bucket)
    assert invoke_cli(env, "enqueue", "scan", "acme").returncode == 0
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 1
    failed = status_json(env)["import"]
    assert (failed["last_error_resolved"], failed["last_success_at"]) == (False, None)
    assert status_rows(env)["last error"].startswith(f"bucket {bucket} does not exist at ")
    s3.create_bucket(bucket)
    assert invoke_cli(env, "enqueue", "scan", "acme").returncode == 0
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 0
    # When its status is asked for
    imp = status_json(env)["import"]
    rows = status_rows(env)
    # Then both are there with their ages, and the error is marked resolved
    assert imp["last_error"] == f"bucket {bucket} does not exist"
    assert imp["last_error_resolved"] is True
    assert imp["last_error_at"] < imp["last_success_at"]
    assert re.fullmatch(rf"resolved: bucket {bucket} does not exist at \S+Z \(\d+s ago\)",
                        rows["last error"]), rows["last error"]
    assert re.fullmatch(r"\S+Z \(\d+s ago\)", rows["last success"])


def test_the_rate_and_eta_come_from_the_files_recent_revisions(
        services: Services, s3: S3, import_bucket: str) -> None:
    # Given three revisions of one file, 10 MB apart, written 5 s apart, and an older run's
    def write(number: int, at_s: float, byte_end: int, key: str = "accounts.csv") -> RevisionMeta:
        meta = RevisionMeta(number=number, events=1, min_t=T0, max_t=T0,
                            written_at=iso_utc(at_s), source="csv", source_key=key,
                            source_etag='"e"', record_start=1, record_end=number * 1000,
                            byte_start=0, byte_end=byte_end, line_end=1, rejected=0,
                            file_end=FileEnd.OPEN, file_first_revision=2)
        services.store.write("acme", meta, b'{"_p":"a","_t":1700000000}\n')
        return meta

    write(1, T0, 5, key="other.csv")
    write(2, T0 + 1000, 10_000_000)
    write(3, T0 + 1005, 20_000_000)
    newest = write(4, T0 + 1010, 30_000_000)
    # Then the rate is 2 MB/s
    assert recent_rate(Revisions(services.store, services.tail_cache), "acme", newest) == \
        2_000_000


@pytest.mark.slow(5)
def test_a_running_import_shows_where_how_far_how_fast_and_what_is_queued(
        env: Env, services: Services, s3: S3, import_bucket: str, tmp_path: Path) -> None:
    # Given a big file being imported by a real worker, and an export waiting behind it
    rows = 1_500_000
    body = ("Identity,Timestamp,Event\n" + "".join(
        f"person-{i:07d},{T0 + i},Viewed\n" for i in range(rows))).encode()
    s3.put(import_bucket, "accounts.csv", body)
    make_site(services, import_bucket)
    enqueued = orjson.loads(invoke_cli(env, "enqueue", "scan", "acme", "--json").stdout)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "producers", "worker", "--processes", "1", "--threads", "1"],
            cwd=REPO, env=env.as_dict(BUCKETBRIDGE_METRICS_PORT=str(free_port()),
                                      PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics")),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while s3.head(env.settings.store_bucket, revision_key("acme", 2)) is None:
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        # When its status is asked for while it runs
        data = status_json(env)
        human = status_rows(env)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    # Then it says which worker process runs it since when, for the message the operator sent
    [run] = data["running"]
    assert (run["job"], run["message_id"]) == ("import", enqueued["message_id"])
    assert re.fullmatch(r".+:\d+", run["worker"]) and run["since"] <= data["checked_at"]
    assert human["running"].startswith(f"import since {run['since']} (")
    assert f"on {run['worker']}, message {enqueued['message_id']}" in human["running"]
    # And how far the file is: bytes of its size, percentage, rows so far
    p = data["import"]["progress"]
    assert data["import"]["current_file"] == "accounts.csv"
    assert p["size_bytes"] == len(body) and 0 < p["bytes_done"] < len(body)
    assert p["rows_done"] >= 200_000 and 0 < p["percent"] < 100
    assert re.fullmatch(r"accounts\.csv: [\d.]+ MB of [\d.]+ MB \([\d.]+%\), [\d,]+ rows so far"
                        r"(, [\d.]+ MB/s, ETA \S+)?", human["current file"]), human
    if p["rate_bytes_per_s"] is not None:  # revisions written in different seconds
        assert p["eta_s"] == round((p["size_bytes"] - p["bytes_done"]) / p["rate_bytes_per_s"])


def test_watch_refreshes_until_interrupted(
        env: Env, services: Services, import_bucket: str) -> None:
    make_site(services, import_bucket)
    proc = subprocess.Popen([sys.executable, "-m", "producers", "status", "acme", "--watch",
                             "--interval", "0.5"], cwd=REPO, env=env.as_dict(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.count("state\tactive") >= 2, out
    assert "Traceback" not in err


def test_status_of_an_unknown_site_is_a_usage_error(env: Env, redis_client: redis.Redis) -> None:
    for args in (("status", "nope"), ("status", "nope", "--watch")):
        result = invoke_cli(env, *args)
        assert result.returncode == 2
        assert result.stderr == "bucketbridge: error: no site 'nope'\n"
