"""Two ``bucketbridge worker`` on one host each keep their own Prometheus multiprocess
directory: starting the second never empties the first's, and both serve complete metrics."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.conftest import REPO, Env, free_port, invoke_cli, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def handled(port: int) -> float:
    samples = scrape(port) or {}
    return sum(v for (name, _), v in samples.items()
               if name == "bucketbridge_messages_total")


def idle(port: int) -> bool:
    samples = scrape(port) or {}
    return not any(v for (name, _), v in samples.items()
                   if name == "bucketbridge_messages_inprogress")


def wait_for(condition: object, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while not condition():  # type: ignore[operator]
        assert proc.poll() is None, f"{what}: worker exited\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out: {what}\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


@contextlib.contextmanager
def worker(env: Env, tmp_path: Path, name: str,
           **overrides: str) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    port = free_port()
    log = tmp_path / f"{name}.log"
    environ = env.as_dict(BUCKETBRIDGE_METRICS_PORT=str(port), TMPDIR=str(tmp_path),
                          **overrides)
    if "PROMETHEUS_MULTIPROC_DIR" not in overrides:
        environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "producers", "worker", "--processes", "1",
                                 "--threads", "1"], cwd=REPO, env=environ, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: scrape(port) is not None, f"{name}'s /metrics", proc, log)
        yield port, log, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_a_second_worker_on_the_host_leaves_the_first_ones_metrics_whole(
        env: Env, s3: S3, site: SiteConfig, tmp_path: Path) -> None:
    s3.put(site.import_bucket, "accounts.csv", b"Identity,Timestamp,Event\na,1700000000,E\n")
    with worker(env, tmp_path, "first") as (first_port, log, proc):
        # Given a first worker that has handled a scan
        assert invoke_cli(env, "enqueue", "scan", "acme").returncode == 0
        # (the scan, then the status.csv refresh it asks for; nothing in flight after)
        wait_for(lambda: handled(first_port) >= 2 and idle(first_port), "the scan", proc, log)
        before = scrape(first_port)
        assert before is not None and len(before) > 20
        # When a second worker starts on the same host
        with worker(env, tmp_path, "second") as (second_port, _, _):
            after = scrape(first_port)
            second = scrape(second_port)
        # Then the first still serves every series it had, with the same values
        assert after is not None and second is not None
        assert {k: v for k, v in after.items() if k in before} == before
        assert handled(first_port) >= 1
        # And each had a directory of its own
        assert len(list(tmp_path.glob("bucketbridge-metrics-*"))) == 2


def test_a_directory_in_use_by_a_running_worker_is_refused(
        env: Env, site: SiteConfig, tmp_path: Path) -> None:
    shared_dir = tmp_path / "shared-metrics"
    with worker(env, tmp_path, "first", PROMETHEUS_MULTIPROC_DIR=str(shared_dir)) as (port, log,
                                                                                      proc):
        assert invoke_cli(env, "enqueue", "scan", "acme").returncode == 0
        wait_for(lambda: handled(port) >= 1, "the scan", proc, log)
        files_before = sorted(p.name for p in shared_dir.iterdir())
        # When a second worker is pointed at the same directory
        refused = run_cli(env, "worker", PROMETHEUS_MULTIPROC_DIR=str(shared_dir),
                          BUCKETBRIDGE_METRICS_PORT=str(free_port()))
        # Then it is refused with one line, and the first worker's files are untouched
        assert refused.returncode == 2
        assert refused.stderr.startswith(f"bucketbridge: error: PROMETHEUS_MULTIPROC_DIR "
                                         f"{shared_dir} is in use by running process ")
        assert refused.stderr.count("\n") == 1
        assert sorted(p.name for p in shared_dir.iterdir()) == files_before
