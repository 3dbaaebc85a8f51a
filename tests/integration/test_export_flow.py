"""The export flow through the real CLI and real processes, including a SIGKILL mid-export."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from shared.services import Services
from shared.store.ledger import ExportLedger
from shared.store.s3 import S3
from tests.conftest import REPO, Env, run_cli
from tests.shared.exports.test_exporter import write_revision

pytestmark = pytest.mark.timeout(180)


def index_names(s3: S3, bucket: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(s3.read_bytes(bucket, "index.csv").decode())))
    return [r[0] for r in rows[1:]]


@pytest.mark.slow(10)
def test_operator_flow_add_import_export_reexport(
        env: Env, s3: S3, services: Services, import_bucket: str, export_bucket: str) -> None:
    # Given a site registered with an export bucket and one file waiting
    s3.put(import_bucket, "accounts-1.csv",
           b"Identity,Timestamp,Event\nann,1700000000,Signed Up\nbob,1700000100,Paid\n")
    added = run_cli(env, "sites", "add", "acme", "--import-bucket", import_bucket,
                    "--base-filename", "accounts.csv", "--export-bucket", export_bucket, "--yes")
    assert added.returncode == 0, added.stderr
    # When it is scanned and exported now (the schedule would export up to yesterday)
    assert run_cli(env, "enqueue", "scan", "acme").returncode == 0
    assert run_cli(env, "drain", "--timeout", "60").returncode == 0
    assert run_cli(env, "enqueue", "export", "acme", "--cutoff", "now").returncode == 0
    assert run_cli(env, "drain", "--timeout", "60").returncode == 0
    # Then the customer bucket has the revision byte for byte, and the index names it
    store = services.settings.store_bucket
    assert s3.read_bytes(export_bucket, "revisions/1.json") == \
        s3.read_bytes(store, "sites/acme/revisions/000000000001.json")
    assert index_names(s3, export_bucket) == ["revisions/1.json"]
    status = orjson.loads(run_cli(env, "status", "acme", "--json").stdout)
    assert status["export"]["position"] == 1 and status["export"]["lag_revisions"] == 0
    # When the customer deletes the file and an operator re-exports it on purpose
    s3.delete(export_bucket, "revisions/1.json")
    assert run_cli(env, "enqueue", "export", "acme", "--cutoff", "now").returncode == 0
    assert run_cli(env, "drain", "--timeout", "60").returncode == 0
    assert s3.head(export_bucket, "revisions/1.json") is None  # not repopulated
    reexport = run_cli(env, "enqueue", "reexport", "acme", "--from", "1")
    assert reexport.returncode == 0, reexport.stderr
    assert run_cli(env, "drain", "--timeout", "60").returncode == 0
    assert s3.head(export_bucket, "revisions/1.json") is not None
    assert index_names(s3, export_bucket) == ["revisions/1.json"]
    # And asking for revisions that were never exported is a usage error
    beyond = run_cli(env, "enqueue", "reexport", "acme", "--from", "5")
    assert beyond.returncode == 2
    assert beyond.stderr.strip().count("\n") == 0 and "Traceback" not in beyond.stderr


@pytest.mark.slow(10)
def test_sigkill_mid_export_resumes_without_gaps_or_duplicates(
        env: Env, s3: S3, services: Services, import_bucket: str, export_bucket: str) -> None:
    # Given 300 revisions written yesterday (by the clock of the processes below, not the
    # fixtures' frozen one) and an export bucket
    yesterday = time.time() - 86400
    bodies = {n: write_revision(services.store, "acme", n, yesterday, [1700000000 + n])
              for n in range(1, 301)}
    s3.put(import_bucket, "accounts.csv", b"Identity,Timestamp,Event\na,1,E\n")  # to preview
    added = run_cli(env, "sites", "add", "acme", "--import-bucket", import_bucket,
                    "--base-filename", "accounts.csv", "--export-bucket", export_bucket,
                    "--yes")
    assert added.returncode == 0, added.stderr
    assert run_cli(env, "enqueue", "export", "acme").returncode == 0
    # When a draining process is SIGKILLed after some revisions were copied
    proc = subprocess.Popen([sys.executable, "-m", "producers", "drain", "--timeout", "120"],
                            env=env.as_dict(), cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            copied = sum(1 for i in s3.list(export_bucket, "revisions/"))
            if copied >= 30:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    killed_at = ExportLedger(s3, services.settings.store_bucket).load("acme").position
    assert killed_at < 300, "the kill landed after the export finished; nothing was tested"
    # Then the next cycles resume: every revision exported once, in order, no gap
    services.redis.flushdb()  # the killed process's lease would otherwise wait out its TTL
    for _ in range(5):
        assert run_cli(env, "enqueue", "export", "acme").returncode == 0
        assert run_cli(env, "drain", "--timeout", "120").returncode == 0
        if ExportLedger(s3, services.settings.store_bucket).load("acme").position == 300:
            break
    assert index_names(s3, export_bucket) == [f"revisions/{n}.json" for n in range(1, 301)]
    for n in (1, killed_at or 1, killed_at + 1, 300):
        assert s3.read_bytes(export_bucket, f"revisions/{n}.json") == bodies[n]
    status = list(csv.reader(io.StringIO(s3.read_bytes(export_bucket, "status.csv").decode())))
    assert status[1][:2] == ["300", "300"]
