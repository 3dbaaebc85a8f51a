"""``bucketbridge drain`` tells the truth: exit 1 and one line per failed or dead-lettered
message (no traceback unless -v), a clean stop on Ctrl-C after the message in hand
checkpointed, a progress line on a terminal, JSON on request.  Real processes, where what the
process prints or how it takes a signal is the point."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time
import uuid

import orjson
import pytest
import redis

from shared.services import Services
from shared.store.revisions import revision_key
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.conftest import REPO, Env, invoke_cli, run_cli

pytestmark = pytest.mark.timeout(120)

T0 = 1_700_000_000


def big_csv(rows: int) -> bytes:
    return ("Identity,Timestamp,Event\n" + "".join(
        f"person-{i:07d},{T0 + i},Viewed\n" for i in range(rows))).encode()


def trouble(env: Env, s3: S3, services: Services) -> str:
    """Two scans that fail: acme's store is damaged (dead-lettered), gone's bucket is missing
    (the job records the error).  Returns the missing bucket's name."""
    s3.put(services.settings.store_bucket, revision_key("acme", 1), b"not a revision\n")
    missing = f"gone-{uuid.uuid4().hex[:12]}"
    services.sites.create(SiteConfig(site_id="gone", import_bucket=missing,
                                     base_filename="accounts.csv"))
    for site in ("acme", "gone"):
        assert invoke_cli(env, "enqueue", "scan", site).returncode == 0
    return missing


def test_drain_exits_1_with_one_line_per_failure_and_no_traceback(
        env: Env, s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a scan that dies and a scan of a site whose bucket is missing
    missing = trouble(env, s3, services)
    # When the queue is drained
    result = run_cli(env, "drain", "--timeout", "60")
    # Then it fails, with one line per failure naming the site, actor and error, no traceback
    assert result.returncode == 1, result.stderr
    lines = sorted(result.stderr.splitlines())
    assert len(lines) == 2, result.stderr
    assert re.fullmatch(r"bucketbridge: dead-lettered: scan acme: RevisionUnreadable: revision 1"
                        r" of site acme is unreadable .*\(message ([0-9a-f-]{36}); bucketbridge "
                        r"dlq show \1\)", lines[0]), lines[0]
    assert re.fullmatch(rf"bucketbridge: failed: scan gone: bucket_error: bucket {missing} does "
                        r"not exist \(message [0-9a-f-]{36}\)", lines[1]), lines[1]
    assert result.stdout == "drained: 2 message(s) processed, 2 failed, queues empty\n"


def test_drain_shows_the_traceback_with_verbose(
        env: Env, s3: S3, services: Services, site: SiteConfig) -> None:
    trouble(env, s3, services)
    result = run_cli(env, "-v", "drain", "--timeout", "60")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr


def test_drain_json_has_every_message_and_its_outcome(
        env: Env, s3: S3, services: Services, site: SiteConfig) -> None:
    s3.put(site.import_bucket, "accounts.csv", b"Identity,Timestamp,Event\na,1700000000,E\n")
    assert invoke_cli(env, "enqueue", "scan", "acme").returncode == 0
    result = invoke_cli(env, "drain", "--timeout", "60", "--json")
    assert result.returncode == 0, result.stderr
    data = orjson.loads(result.stdout)
    assert (data["processed"], data["failed"], data["queued"], data["ended"]) == (2, 0, 0,
                                                                                  "empty")
    # the scan, then the status.csv refresh it asked for
    assert [(m["actor"], m["site"], m["state"], m["outcome"]) for m in data["messages"]] == [
        ("scan", "acme", "done", "done"), ("export", "acme", "done", "status")]


def test_ctrl_c_stops_after_the_message_in_hand_checkpointed_and_says_so(
        env: Env, s3: S3, services: Services, site: SiteConfig,
        redis_client: redis.Redis) -> None:
    # Given a file that takes many seconds to import, and a drain working on it
    rows = 900_000
    s3.put(site.import_bucket, "accounts.csv", big_csv(rows))
    assert invoke_cli(env, "enqueue", "scan", "acme").returncode == 0
    bucket = services.settings.store_bucket
    proc = subprocess.Popen([sys.executable, "-m", "producers", "drain"], cwd=REPO,
                            env=env.as_dict(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while s3.head(bucket, revision_key("acme", 1)) is None:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        # When the operator presses Ctrl-C
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # Then it stopped, said so, and exit 1 (the queue is not drained)
    assert proc.returncode == 1, err
    assert "SIGINT: stopping after the message(s) in hand checkpoint" in err
    assert "Traceback" not in err and "Aborted" not in err
    # (left queued: the scan's continuation, and its status.csv refresh if not taken yet)
    assert re.fullmatch(r"drain stopped: \d+ message\(s\) processed, 0 failed; the message\(s\) "
                        r"in hand checkpointed, [12] left queued\n", out), out
    # And the scan committed what it had converted, recorded "interrupted", and queued its
    # continuation
    latest = services.store.latest_number("acme")
    head = services.store.head("acme", latest)
    assert head is not None and not head[0].ends_file
    assert services.statuses.read("acme", "scan").outcome == "interrupted"
    queued = [orjson.loads(m) for m in redis_client.hvals("dramatiq:imports.msgs")]
    assert [(m["actor_name"], m["args"]) for m in queued] == [("scan", ["acme"])]
    # And the next drain finishes the file: every row once
    assert invoke_cli(env, "drain", "--timeout", "90").returncode == 0
    total = sum(len(s3.read_bytes(bucket, revision_key("acme", n)).splitlines())
                for n in range(1, services.store.latest_number("acme") + 1))
    assert total == rows


def test_drain_shows_a_progress_line_on_a_terminal(
        env: Env, s3: S3, site: SiteConfig) -> None:
    # Given a scan that takes a few seconds
    s3.put(site.import_bucket, "accounts.csv", big_csv(300_000))
    assert invoke_cli(env, "enqueue", "scan", "acme").returncode == 0
    # When drain runs with its stderr on a terminal
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "producers", "drain", "--timeout", "60"],
                            cwd=REPO, env=env.as_dict(TERM="xterm", COLUMNS="120"),
                            stdout=subprocess.PIPE, stderr=terminal, text=True)
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(controller)
    # Then the terminal saw what is done, queued and in hand; stdout has the summary only
    assert proc.returncode == 0
    screen = seen.decode("utf-8", "replace")
    assert re.search(r"drain: \d+ done, 0 failed, \d+ queued; in hand: scan acme", screen), \
        screen[-2000:]
    assert out == "drained: 2 message(s) processed, queues empty\n"
