"""``bucketbridge files reimport`` through real processes: the result line, a rerun that does
nothing, user mistakes, a busy site, and exactly once across a SIGKILL and a SIGTERM."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.fleet.leases import Lease, lease_name
from shared.fleet.notices import Notices, pending_key
from shared.imports.reimport import Reimporter
from shared.services import Services
from shared.store.reimportmarkers import MarkerStore
from shared.store.revisions import revision_key
from shared.store.sites import SiteConfig
from tests.conftest import REPO, Env, invoke_cli, run_cli
from tests.producers.test_cli import queued
from tests.shared.filetools.exportset import JAN_31_S, ndjson, tree_digest

pytestmark = pytest.mark.timeout(240)

BIG_LINES = 350_000  # four revisions of at most 100,000 events


def bb(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, "files", *args, input_text="", timeout_s=120)


def stored_lines(services: Services, site: str = "acme") -> list[bytes]:
    return [raw for info in services.store.objects(site)
            for raw in services.store.s3.read_bytes(services.store.bucket, info.key).splitlines()]


def big_line(i: int) -> bytes:
    return b'{"_p":"user-%d","_t":%d,"_n":"Viewed Page","Page":"/p/%d","Plan":"Pro"}\n' % (
        i, JAN_31_S + i, i % 97)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "export.json"
    with path.open("wb") as f:
        for start in range(0, BIG_LINES, 10_000):
            f.write(b"".join(big_line(i) for i in range(start, start + 10_000)))
    return path


def test_reimport_reports_its_revisions_and_a_rerun_does_nothing(
        env: Env, services: Services, site: SiteConfig, tmp_path: Path) -> None:
    lines = [{"_p": f"u{i}", "_t": JAN_31_S + i, "_n": "Paid", "Größe": "M"} for i in range(5)]
    path = tmp_path / "export.json"
    path.write_bytes(ndjson(lines))
    before = tree_digest(tmp_path)
    result = bb(env, "reimport", "acme", str(path))
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout.startswith("reimported 5 lines of export.json into site acme: "
                                    "revisions 1..1 (sha256:")
    assert [orjson.loads(raw) for raw in stored_lines(services)] == lines
    again = bb(env, "reimport", "acme", str(path))
    assert again.returncode == 0
    assert again.stdout == ("export.json was reimported into site acme already (revisions "
                            "1..1); nothing to do\n")
    assert len(stored_lines(services)) == 5
    assert tree_digest(tmp_path) == before


def test_reimport_mistakes_are_one_line(env: Env, services: Services, site: SiteConfig,
                                        tmp_path: Path) -> None:
    (tmp_path / "export.json").write_bytes(b'{"_p":"a","_t":1}\n{"_p":"b"}\n')
    result = bb(env, "reimport", "nosuch", str(tmp_path / "export.json"))
    assert (result.returncode, result.stderr) == (2, "bucketbridge: error: no site 'nosuch'\n")
    result = bb(env, "reimport", "acme", str(tmp_path / "missing.json"))
    assert (result.returncode, result.stderr) == (
        2, f"bucketbridge: error: no such file or directory: {tmp_path / 'missing.json'}\n")
    result = bb(env, "reimport", "acme", str(tmp_path / "export.json"), "--strict")
    assert (result.returncode, result.stderr) == (
        2, f"bucketbridge: error: {tmp_path / 'export.json'} line 2: missing _t (only alias "
           "lines may have no timestamp)\n")
    assert stored_lines(services) == []


def test_a_busy_site_is_refused_with_exit_status_1(
        env: Env, services: Services, site: SiteConfig, tmp_path: Path) -> None:
    (tmp_path / "export.json").write_bytes(b'{"_p":"a","_t":1}\n')
    holder = Lease(services.redis, "import", "acme")
    assert holder.acquire()
    with holder:
        result = bb(env, "reimport", "acme", str(tmp_path / "export.json"))
    assert (result.returncode, result.stderr) == (
        1, "bucketbridge: error: site acme is busy: an import holds its lease; try again when "
           "it is done\n")
    assert stored_lines(services) == []


def _start(env: Env, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "producers", "files", *args],
                            env=env.as_dict(), cwd=REPO, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_revision(services: Services, proc: subprocess.Popen[str], number: int) -> None:
    deadline = time.monotonic() + 60
    while services.store.s3.head(services.store.bucket, revision_key("acme", number)) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _out, err = proc.communicate()
            pytest.fail(f"no revision {number} appeared (exit {proc.returncode}): {err}")
        time.sleep(0.01)


def _assert_every_line_once(services: Services) -> None:
    expected = [big_line(i).rstrip(b"\n") for i in range(BIG_LINES)]
    assert stored_lines(services) == expected


@pytest.mark.slow
def test_a_killed_reimport_is_finished_by_a_rerun_exactly_once(
        env: Env, services: Services, site: SiteConfig, big_file: Path) -> None:
    # Given a reimport killed with SIGKILL once its first revision is written
    proc = _start(env, "reimport", "acme", str(big_file))
    _wait_for_revision(services, proc, 1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    written = list(services.store.objects("acme"))
    assert 1 <= len(written) < 4, "the process finished before it was killed"
    # Then its lease outlives it, so a rerun right away is refused
    busy = bb(env, "reimport", "acme", str(big_file))
    assert busy.returncode == 1 and "site acme is busy" in busy.stderr
    # When the lease has expired (its TTL, here cut short) and the reimport runs again
    services.redis.delete(lease_name("import", "acme"))
    result = bb(env, "reimport", "acme", str(big_file))
    # Then it finishes, and every line is in the store exactly once, in order
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"reimported {BIG_LINES - len(written) * 100_000} lines ")
    _assert_every_line_once(services)
    assert [i.key for i in services.store.objects("acme")] == [
        revision_key("acme", n) for n in range(1, 5)]


@pytest.mark.slow
def test_sigterm_stops_a_reimport_at_a_commit_and_a_rerun_continues(
        env: Env, services: Services, site: SiteConfig, big_file: Path) -> None:
    proc = _start(env, "reimport", "acme", str(big_file))
    _wait_for_revision(services, proc, 1)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    # Then it stopped cleanly (exit 1, one line saying how to go on) with its work committed
    assert proc.returncode == 1
    assert err.startswith("bucketbridge: error: reimport of export.json stopped before line ")
    assert err.endswith("; run the same command again to continue\n")
    next_line = int(err.split("before line ")[1].split(";")[0])
    assert len(stored_lines(services)) == next_line - 1 < BIG_LINES
    file_id = "sha256:" + hashlib.sha256(big_file.read_bytes()).hexdigest()
    marker = MarkerStore(services.store.s3, services.store.bucket).read("acme", file_id)
    assert marker is not None and marker.line_end == next_line - 1 and not marker.done
    # And the lease was released, so the rerun starts at once and finishes the file
    result = bb(env, "reimport", "acme", str(big_file))
    assert result.returncode == 0, result.stderr
    _assert_every_line_once(services)


def test_a_file_announced_during_a_reimport_gets_its_scan_afterwards(
        env: Env, services: Services, site: SiteConfig, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a reimport during which the listener matched an upload for the site (its scan, if
    # any, found the import lease held by the reimport)
    path = tmp_path / "export.json"
    path.write_bytes(ndjson([{"_p": "u1", "_t": JAN_31_S, "_n": "Paid"}]))
    notices = Notices(services.redis)
    original = Reimporter.run

    def run_while_a_file_arrives(self: Reimporter, *args: Any, **kwargs: Any) -> Any:
        notices.arrived({"acme": 1}, 0.0)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Reimporter, "run", run_while_a_file_arrives)
    # When the reimport finishes
    result = invoke_cli(env, "files", "reimport", "acme", str(path))
    # Then it queued one scan for the site, marked pending for the listener
    assert result.returncode == 0, result.stderr
    assert "a scan is queued" in result.stderr
    assert [m["args"] for m in queued(services.redis, "imports")] == [["acme"]]
    assert services.redis.exists(pending_key("acme"))
    # And a reimport during which nothing arrived queues nothing
    monkeypatch.undo()
    services.redis.delete("dramatiq:imports")
    assert invoke_cli(env, "files", "reimport", "acme", str(path)).returncode == 0
    assert queued(services.redis, "imports") == []
