"""``BUCKETBRIDGE_LOG_FORMAT=json``: every log line of the worker, the scheduler and the CLI is
one JSON object, and the lines written while a message is processed carry its site, message
id and job kind as fields of their own."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.conftest import REPO, Env, free_port, invoke_cli, run_cli

pytestmark = pytest.mark.timeout(120)

GOOD = b"Identity,Timestamp,Event\na,1700000000,E\n"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object (fails on any line that is not one)."""
    out = []
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            assert isinstance(record, dict), line
            assert {"time", "level", "logger", "pid", "message"} <= set(record), line
            out.append(record)
    return out


def enqueued(env: Env) -> str:
    result = invoke_cli(env, "enqueue", "scan", "acme", "--json")
    assert result.returncode == 0, result.stderr
    message_id: str = orjson.loads(result.stdout)["message_id"]
    return message_id


def test_worker_logs_json_with_site_message_id_and_job_kind(
        env: Env, s3: S3, site: SiteConfig, tmp_path: Path) -> None:
    # Given a scan queued, and a real worker logging JSON
    s3.put(site.import_bucket, "accounts.csv", GOOD)
    message_id = enqueued(env)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "producers", "worker", "--processes", "1", "--threads", "1"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env=env.as_dict(BUCKETBRIDGE_LOG_FORMAT="json",
                            BUCKETBRIDGE_METRICS_PORT=str(free_port()),
                            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics")))
    try:
        deadline = time.monotonic() + 60
        while "site=acme scan done" not in log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    # Then every line, dramatiq's and ours, from every process, is JSON
    records = json_lines(log.read_text())
    assert any(r["message"] == "Worker process is ready for action." for r in records)
    assert len({r["pid"] for r in records}) >= 2  # the main process and a worker process
    # And the scan's lines carry the message's fields
    done = [r for r in records if r["message"].startswith("site=acme scan done")]
    assert len(done) == 1
    assert (done[0]["site"], done[0]["message_id"], done[0]["job_kind"]) == (
        "acme", message_id, "scan")
    assert done[0]["time"].endswith("Z") and done[0]["level"] == "INFO"


def test_cli_and_in_process_workers_log_json(env: Env, s3: S3, site: SiteConfig) -> None:
    s3.put(site.import_bucket, "accounts.csv", GOOD)
    message_id = enqueued(env)
    result = run_cli(env, "-v", "drain", "--timeout", "60", BUCKETBRIDGE_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stderr)
    scan = [r for r in records if r.get("message_id") == message_id]
    assert scan and all((r["site"], r["job_kind"]) == ("acme", "scan") for r in scan)


def test_scheduler_logs_json(env: Env, site: SiteConfig) -> None:
    result = run_cli(env, "-v", "scheduler", "--once", BUCKETBRIDGE_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    records = json_lines(result.stderr)
    assert any("published scan" in r["message"] for r in records), records


def test_text_is_the_default_and_a_bad_format_is_refused(env: Env, site: SiteConfig) -> None:
    text = run_cli(env, "-v", "scheduler", "--once")
    assert text.returncode == 0
    assert " INFO [PID " in text.stderr and not text.stderr.lstrip().startswith("{")
    bad = run_cli(env, "sites", "list", BUCKETBRIDGE_LOG_FORMAT="xml")
    assert (bad.returncode, bad.stderr) == (
        2, "bucketbridge: error: invalid BUCKETBRIDGE_LOG_FORMAT 'xml': use text or json\n")
