"""DESIGN.md's invariants, proven with real processes against real Redis and moto's S3 server.

Workers are the real ``bucketbridge worker`` (the dramatiq CLI on ``workers.app``) and the real
``bucketbridge drain``, started as subprocesses in their own process group and killed, stopped,
frozen or terminated from the outside.  Every test reads back every revision of the store bucket
and compares it, row by row, with the rows the test generated.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import itertools
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from shared.fleet.leases import lease_name
from shared.fleet.messages import scan_message
from shared.fleet.publisher import Publisher
from shared.formats.importkeys import COMPLETED_PREFIX, FAILED_PREFIX
from shared.metrics import JOB as JOB_LABEL
from shared.services import Services
from shared.store.rejectreports import rejects_key
from shared.store.revisions import (
    EventStore,
    FileEnd,
    RevisionExists,
    RevisionMeta,
    revision_key,
)
from shared.store.revisionwriter import Limits
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.conftest import REPO, Env, free_port, invoke_cli, run_cli

T = TypeVar("T")

SITE = "acme"
T0 = 1_700_000_000
HEADER = ("Identity", "Timestamp", "Event", "Prop:Plan", "Prop:Amount", "Prop:Note")
ROWS_PER_REVISION = Limits().max_events_per_revision
IMPORT_LEASE = lease_name("import", SITE)


# -- the data ---------------------------------------------------------------------------------

_PLANS = [f"plan{n}" for n in range(3)]
_AMOUNTS = [str(n) for n in range(997)]
_NOTES = [f"n{n}" for n in range(10)]
_QUOTED_NOTE = 'a, "quoted" note'


@dataclass(frozen=True)
class Source:
    """A generated import file: ``rows`` data records, every ``bad_every``-th one invalid."""

    key: str
    tag: str
    rows: int
    bad_every: int = 0
    newline: str = "\n"

    def __post_init__(self) -> None:
        # A valid last row: the file's last revision is the one that marks it finished.
        assert not self.is_bad(self.rows - 1)

    def is_bad(self, i: int) -> bool:
        return self.bad_every > 0 and i % self.bad_every == self.bad_every // 2

    def _cells(self) -> Iterator[tuple[str, str, str, str, str, str]]:
        """Each row's cells, in order (locals hoisted: millions of rows per test)."""
        tag, bad_every, is_bad = self.tag, self.bad_every, self.is_bad
        for i in range(self.rows):
            identity, timestamp = f"{tag}-{i:07d}", str(T0 + i)
            if bad_every and is_bad(i):
                if (i // bad_every) % 2:
                    identity = ""  # missing Identity
                else:
                    timestamp = f"{T0 + i}ms"  # not whole Unix seconds
            yield (identity, timestamp,
                   "Signed Up" if i % 4 else "",  # a row without an event is a property set
                   _PLANS[i % 3], "" if i % 10 == 0 else _AMOUNTS[i % 997],
                   _QUOTED_NOTE if i % 5000 == 0 else _NOTES[i % 10])

    @cached_property
    def text(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator=self.newline)
        writer.writerow(HEADER)
        writer.writerows(self._cells())
        return out.getvalue().encode("utf-8")

    @cached_property
    def data(self) -> bytes:
        """The object's bytes: gzipped for a ``.gz`` key."""
        return gzip.compress(self.text, compresslevel=1) if self.key.endswith(".gz") else self.text

    def expected_lines(self) -> Iterator[dict[str, Any]]:
        """The export line of every valid row, in file order."""
        bad_every, is_bad = self.bad_every, self.is_bad
        for i, (identity, _, event, plan, amount, note) in enumerate(self._cells()):
            if bad_every and is_bad(i):
                continue
            line: dict[str, Any] = {"_p": identity, "_t": T0 + i}
            if event:
                line["_n"] = event
            line["Plan"] = plan
            if amount:
                line["Amount"] = amount
            line["Note"] = note
            yield line

    def bad_records(self) -> list[int]:
        """1-based record numbers of the invalid rows."""
        return list(self._bad_records)

    @cached_property
    def _bad_records(self) -> tuple[int, ...]:
        return tuple(i + 1 for i in range(self.rows) if self.is_bad(i))


def upload(s3: S3, site: SiteConfig, sources: list[Source]) -> None:
    """Put the files in the customer bucket."""
    for src in sources:
        s3.put(site.import_bucket, src.key, src.data)


# -- reading the outcome back -----------------------------------------------------------------


@dataclass(frozen=True)
class Revision:
    meta: RevisionMeta
    body: bytes


def read_revisions(s3: S3, bucket: str, site: str = SITE) -> list[Revision]:
    """Every revision of ``site``, in order: one GET each (its metadata comes with it)."""
    store = EventStore(s3, bucket)
    out = []
    for info in store.objects(site):
        found = s3.read_object(bucket, info.key)
        assert found is not None, f"{info.key} listed but gone"
        body, stored = found
        out.append(Revision(RevisionMeta.from_metadata(stored.metadata), body))
    return out


def latest_meta(s3: S3, bucket: str, site: str = SITE) -> RevisionMeta | None:
    store = EventStore(s3, bucket)
    number = store.latest_number(site)
    head = store.head(site, number) if number else None
    return head[0] if head else None


def revision_exists(s3: S3, bucket: str, number: int, site: str = SITE) -> bool:
    return s3.head(bucket, revision_key(site, number)) is not None


def import_keys(s3: S3, site: SiteConfig) -> set[str]:
    return {info.key for info in s3.list(site.import_bucket)}


def pending(s3: S3, site: SiteConfig, sources: list[Source]) -> list[str]:
    """The sources still at their original key."""
    keys = import_keys(s3, site)
    return [src.key for src in sources if src.key in keys]


def assert_exactly_once(revisions: list[Revision], sources: list[Source]) -> None:
    """Revisions are 1..N, and their lines are exactly the valid rows of ``sources`` in order.

    Also checks the metadata: each revision records the source range it holds, and the ranges
    of one file follow each other without gap or overlap up to the file's last record.
    """
    assert [r.meta.number for r in revisions] == list(range(1, len(revisions) + 1)), \
        "revisions must be numbered 1..N without gaps"
    expected_ids: list[str] = []  # filled as ``expected`` is read, to its end below

    def expected_in_order() -> Iterator[dict[str, Any]]:
        for src in sources:
            for line in src.expected_lines():
                expected_ids.append(line["_p"])
                yield line

    expected = expected_in_order()
    actual_ids: list[str] = []
    first_mismatch = None
    problems = []
    for rev in revisions:
        lines = rev.body.splitlines()
        if len(lines) != rev.meta.events:
            problems.append(f"revision {rev.meta.number} holds {len(lines)} lines, its "
                            f"metadata says {rev.meta.events}")
        for raw in lines:
            got = orjson.loads(raw)
            want = next(expected, None)
            actual_ids.append(str(got.get("_p")))
            if first_mismatch is None and got != want:
                first_mismatch = (len(actual_ids), rev.meta.number, got, want)
    left_over = sum(1 for _ in expected)
    counts = Counter(actual_ids)
    duplicated = sorted(k for k, n in counts.items() if n > 1)
    missing = sorted(set(expected_ids) - set(counts))
    if duplicated:
        problems.append(f"{len(duplicated)} rows imported more than once, e.g. {duplicated[:3]}")
    if missing:
        problems.append(f"{len(missing)} rows never imported, e.g. {missing[:3]}")
    if left_over or len(actual_ids) != len(expected_ids):
        problems.append(f"{len(actual_ids)} lines stored, {len(expected_ids)} expected")
    if first_mismatch is not None:
        at, number, got, want = first_mismatch
        problems.append(f"line {at} (revision {number}) is {got}, expected {want}")
    problems += range_problems(revisions, sources)
    assert problems == []


def range_problems(revisions: list[Revision], sources: list[Source]) -> list[str]:
    problems = []
    order = [src.key for src in sources]
    keys_in_store = [r.meta.source_key for r in revisions]
    if [k for k, _ in itertools.groupby(keys_in_store)] != order:
        problems.append(f"revisions come from {[k for k, _ in itertools.groupby(keys_in_store)]}"
                        f", expected one run per file in order {order}")
        return problems
    for src in sources:
        revs = [r.meta for r in revisions if r.meta.source_key == src.key]
        first = revs[0].number
        record, byte = 1, 0  # the first range includes the header row
        for meta in revs:
            if (meta.record_start, meta.byte_start, meta.file_first_revision) != \
                    (record, byte, first):
                problems.append(f"revision {meta.number} of {src.key} starts at record "
                                f"{meta.record_start}/byte {meta.byte_start} (first revision "
                                f"{meta.file_first_revision}), expected {record}/{byte} "
                                f"({first})")
            record, byte = meta.record_end + 1, meta.byte_end
        last = revs[-1]
        done = [m.number for m in revs if m.ends_file]
        if done != [last.number] or last.record_end != src.rows or \
                last.byte_end != len(src.text):
            problems.append(f"last revision {last.number} of {src.key} covers records ..."
                            f"{last.record_end}, bytes ...{last.byte_end} (done: {done}); "
                            f"expected ...{src.rows}, ...{len(src.text)}, done only there")
        rejected = sum(m.rejected for m in revs)
        if rejected != len(src.bad_records()):
            problems.append(f"revisions of {src.key} count {rejected} rejected rows, expected "
                            f"{len(src.bad_records())}")
    return problems


def bad_row_report(s3: S3, bucket: str, key: str) -> list[int]:
    rows = list(csv.reader(io.StringIO(s3.read_bytes(bucket, key).decode("utf-8"))))
    assert rows[0] == ["Record", "Line", "Reason", "Content"]
    return [int(r[0]) for r in rows[1:]]


def assert_moved(s3: S3, site: SiteConfig, sources: list[Source]) -> None:
    """Every file was moved, unchanged, to completed_imports/, with its bad rows reported once."""
    infos = {info.key: info for info in s3.list(site.import_bucket)}
    assert [src.key for src in sources if src.key in infos] == [], "files left in place"
    assert [k for k in infos if k.startswith(FAILED_PREFIX)] == [], "nothing may fail"
    for src in sources:
        moved = [k for k in infos if k.startswith(COMPLETED_PREFIX) and k.endswith("/" + src.key)]
        assert len(moved) == 1, f"{src.key} must be in {COMPLETED_PREFIX} once: {moved}"
        assert s3.read_bytes(site.import_bucket, moved[0]) == src.data, f"{src.key} changed"
        report = moved[0] + ".errors.csv"
        if src.bad_records():
            assert bad_row_report(s3, site.import_bucket, report) == src.bad_records()
        else:
            assert report not in infos


# -- processes --------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int | None = None

    def signal_group(self, sig: signal.Signals) -> None:
        """Signal the whole process group (the dramatiq main process and every child)."""
        os.killpg(self.popen.pid, sig)

    def exited(self) -> bool:
        """Whether the process ended, without reaping it (its id stays reserved for the kill)."""
        if self.popen.returncode is not None:
            return True
        info = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return info is not None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, then wait for a clean exit."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout_s)

    def kill(self) -> None:
        """SIGKILL the whole group, without any chance to clean up."""
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=10)


class Processes:
    """Starts ``bucketbridge`` subprocesses, each in a new session; kills them all at the end."""

    def __init__(self, env: Env, tmp_path: Path) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self.started: list[Proc] = []

    def start(self, name: str, *args: str, metrics_port: int | None = None,
              **overrides: str) -> Proc:
        """``bucketbridge ARGS`` (``python -m producers``)."""
        return self._spawn(name, ["-m", "producers", *args], metrics_port, overrides)

    def python(self, name: str, script: str, *args: str) -> Proc:
        """``python -c SCRIPT ARGS``, with the same environment."""
        return self._spawn(name, ["-c", script, *args], None, {})

    def _spawn(self, name: str, argv: list[str], metrics_port: int | None,
               overrides: dict[str, str]) -> Proc:
        log_path = self.tmp_path / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen([sys.executable, *argv], env=self.env.as_dict(**overrides),
                                     cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        proc = Proc(name, popen, log_path, metrics_port)
        self.started.append(proc)
        return proc

    def worker(self, name: str, *, processes: int = 1, budget_s: int = 120,
               **overrides: str) -> Proc:
        port = free_port()
        return self.start(name, "worker", "--processes", str(processes), "--threads", "1",
                          metrics_port=port,
                          BUCKETBRIDGE_IMPORT_BUDGET_S=str(budget_s),
                          BUCKETBRIDGE_METRICS_PORT=str(port),
                          PROMETHEUS_MULTIPROC_DIR=str(self.tmp_path / f"metrics-{name}"),
                          **overrides)

    def kill_all(self) -> None:
        """SIGKILL every group whose leader was not reaped yet (a reaped id may be reused)."""
        for proc in self.started:
            if proc.popen.returncode is not None:
                continue  # waited for after a group kill or a clean stop: nothing is left
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)  # also works on a stopped group
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)


def wait_until(predicate: Callable[[], T], timeout_s: float, what: str,
               alive: Proc | None = None, interval_s: float = 0.05) -> T:
    """Poll ``predicate`` until it is truthy; fail if ``alive`` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if alive is not None and alive.exited():
            pytest.fail(f"{alive.name} exited ({alive.popen.returncode}) while waiting for "
                        f"{what}:\n{alive.log()[-3000:]}")
        if time.monotonic() > deadline:
            tail = f":\n{alive.log()[-3000:]}" if alive is not None else ""
            pytest.fail(f"timed out after {timeout_s:g}s waiting for {what}{tail}")
        time.sleep(interval_s)


def outcome(proc: Proc, timeout_s: float = 60) -> str:
    """The ``outcome X`` a script printed, once it exited cleanly."""
    code = proc.popen.wait(timeout=timeout_s)
    found = re.findall(r"^outcome (\w+)$", proc.log(), re.MULTILINE)
    assert code == 0 and len(found) == 1, f"{proc.name} exited {code}:\n{proc.log()[-3000:]}"
    return str(found[0])


def enqueue_scan(env: Env) -> None:
    """``bucketbridge enqueue scan acme``, in this process: only the workers' processes matter
    here (the command's own process is tested with the CLI)."""
    result = invoke_cli(env, "enqueue", "scan", SITE)
    assert result.returncode == 0, result.stderr


def drain(env: Env, budget_s: int = 120) -> None:
    result = run_cli(env, "drain", "--timeout", "60", timeout_s=90,
                     BUCKETBRIDGE_IMPORT_BUDGET_S=str(budget_s))
    assert result.returncode == 0, result.stderr


def scan_until_imported(env: Env, s3: S3, site: SiteConfig, sources: list[Source],
                        attempts: int = 4) -> None:
    """``enqueue scan`` + ``drain`` until no source is left (a scan may lose a race)."""
    for _ in range(attempts):
        enqueue_scan(env)
        drain(env)
        if not pending(s3, site, sources):
            return
    pytest.fail(f"files still waiting after {attempts} scans: {pending(s3, site, sources)}")


def expire_dead_holders_lease(redis_client: redis.Redis) -> None:
    """A killed worker's lease expires within its TTL; fast-forward that instead of waiting."""
    ttl_ms = redis_client.pttl(IMPORT_LEASE)
    assert 0 < ttl_ms <= 30_000, "the killed worker held the site's lease, with a TTL"
    redis_client.delete(IMPORT_LEASE)


def scrape(proc: Proc) -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
    """The worker pod's /metrics, or ``None`` while the endpoint is not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{proc.metrics_port}/metrics",
                                    timeout=5) as response:
            text = response.read().decode("utf-8")
    except (urllib.error.URLError, ConnectionError):
        return None
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


SCAN_JOB = {JOB_LABEL: "scan"}
REVISION_LOG = re.compile(r"\[PID (\d+)\].*site=acme file=\S+ revision=(\d+) events=")
SCAN_LOG = re.compile(r"site=acme scan (\w+): (\d+) rows")
LOST_RACE_LOG = "site=acme another writer got ahead"


# -- 1. exactly once, in order, whatever is killed ------------------------------------------


@pytest.mark.slow(14)
@pytest.mark.timeout(150)
def test_sigkill_mid_file_then_scanning_again_imports_every_row_exactly_once_in_order(
        env: Env, s3: S3, site: SiteConfig, redis_client: redis.Redis,
        processes: Processes) -> None:
    # Given a large file (several revisions' worth, with bad rows) and a second file after it
    sources = [Source("accounts-1.csv", "a", 600_000, bad_every=40_000),
               Source("accounts-2.csv", "b", 60_000, bad_every=7_000, newline="\r\n")]
    upload(s3, site, sources)
    bucket = env.settings.store_bucket
    kills = []
    for name in ("w1", "w2"):
        # When a worker process is SIGKILLed as soon as it committed a new revision
        before = EventStore(s3, bucket).latest_number(SITE)
        enqueue_scan(env)
        worker = processes.worker(name)
        wait_until(lambda b=before: revision_exists(s3, bucket, b + 1), 60,
                   f"{name}'s first revision", alive=worker)
        worker.kill()
        at_kill = latest_meta(s3, bucket)
        # (the kill landed in the middle of the first file: neither finished nor moved)
        assert at_kill is not None and at_kill.source_key == "accounts-1.csv"
        assert not at_kill.ends_file and "accounts-1.csv" in import_keys(s3, site)
        kills.append(at_kill.number)
        expire_dead_holders_lease(redis_client)
    assert kills[0] < kills[1], "the second worker resumed and committed more"
    # And another worker process scans again until both files are imported
    enqueue_scan(env)
    worker = processes.worker("w3")
    wait_until(lambda: not pending(s3, site, sources), 90, "both files imported", alive=worker,
               interval_s=0.2)
    assert worker.stop() == 0

    # Then every valid row is in exactly one revision, in file order, revisions are 1..N,
    # and both files are in completed_imports/ with their bad rows reported once
    revisions = read_revisions(s3, bucket)
    assert_exactly_once(revisions, sources)
    assert len(revisions) > kills[1]
    assert_moved(s3, site, sources)


# -- 2. contiguous revisions: the conditional write is the fence ------------------------------

# One scan of site acme, straight through Importer.scan: no lease, no broker.
SCAN_WITHOUT_LEASE = """
import sys, time

from shared.imports.scan import Importer
from shared.store.revisionwriter import Limits
from shared.store.revisions import RevisionExists
from shared.services import Services
from shared.settings import Settings

start_at, max_events, stop_after = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
svc = Services.build(Settings.from_env())
site = svc.sites.get("acme")
importer = Importer(svc.store, svc.reports, svc.tail_cache, svc.clock, svc.metrics,
                    Limits(max_events_per_revision=max_events))
stop = lambda: bool(stop_after) and svc.store.latest_number("acme") >= stop_after
time.sleep(max(0.0, start_at - time.time()))
try:
    print("outcome", importer.scan(site, svc.access.for_site(site), 60, should_stop=stop).outcome)
except RevisionExists:
    print("outcome fenced")
"""

# A writer that read the cursor "no revision yet" for KEY, stalled, lost its lease, and now
# commits what it converted up to its first checkpoint.
ZOMBIE_COMMIT = """
import sys, time

from shared.imports.cursor import CSV_SOURCE
from shared.imports.filerun import FileImport, FilePosition
from shared.store.revisionwriter import Limits, RevisionWriter
from shared.store.revisions import RevisionExists
from shared.services import Services
from shared.settings import Settings

key, max_events = sys.argv[1], int(sys.argv[2])
svc = Services.build(Settings.from_env())
site = svc.sites.get("acme")
s3 = svc.access.for_site(site)
etag = s3.head(site.import_bucket, key).etag
writer = RevisionWriter(svc.store, svc.reports, "acme", CSV_SOURCE, svc.clock, svc.metrics)
run = FileImport(s3, site.import_bucket, writer, svc.metrics,
                 Limits(max_events_per_revision=max_events))
try:
    run.run(FilePosition(key=key, etag=etag, gzipped=False), 0, time.monotonic() + 60,
            should_stop=lambda: True)
    print("outcome committed")
except RevisionExists:
    print("outcome fenced")
"""


@pytest.mark.timeout(30)
def test_a_revision_number_can_be_written_only_once(s3: S3, services: Services) -> None:
    # Given revision 1 of a site
    store = EventStore(s3, services.settings.store_bucket)
    meta = RevisionMeta(number=1, events=1, min_t=T0, max_t=T0,
                        written_at="2024-01-01T00:00:00Z", source="csv",
                        source_key="accounts.csv", source_etag='"a"', record_start=1,
                        record_end=1, byte_start=10, byte_end=20, line_end=2, rejected=0,
                        file_end=FileEnd.DONE, file_first_revision=1)
    store.write(SITE, meta, b'{"_p":"first"}\n')
    # When a second writer creates revision 1 again, with other rows
    other = replace(meta, source_key="accounts-other.csv", events=2)
    with pytest.raises(RevisionExists):
        store.write(SITE, other, b'{"_p":"second"}\n{"_p":"third"}\n')
    # Then it is refused and revision 1 is what the first writer wrote
    head = store.head(SITE, 1)
    assert head is not None and head[0] == meta
    assert s3.read_bytes(store.bucket, revision_key(SITE, 1)) == b'{"_p":"first"}\n'
    assert [info.key for info in store.objects(SITE)] == [revision_key(SITE, 1)]


@pytest.mark.timeout(90)
def test_scans_racing_without_a_lease_are_fenced_by_the_conditional_write(
        env: Env, s3: S3, site: SiteConfig, processes: Processes) -> None:
    # Given two files, and small revisions so that writers meet at many revision numbers
    sources = [Source("accounts-1.csv", "a", 60_000, bad_every=9_000),
               Source("accounts-2.csv", "b", 25_000, bad_every=4_000)]
    upload(s3, site, sources)
    # When four processes scan the site at once, bypassing the lease, two of them a little later
    # (they join mid-file, from the cursor the others committed)
    start_at = time.time() + 3
    scans = [processes.python(f"scan{i}", SCAN_WITHOUT_LEASE, str(start_at + delay_s), "2000",
                              "0")
             for i, delay_s in enumerate((0, 0, 0.05, 0.15))]
    outcomes = [outcome(proc) for proc in scans]
    # Then each either finished or stopped at the fence, and at least one was fenced off
    assert set(outcomes) <= {"done", "fenced"}
    assert "fenced" in outcomes, f"writers never met at a revision number: {outcomes}"
    # And once a last, lone scan has picked up whatever the stopped writers left,
    scan_until_imported(env, s3, site, sources)
    # every row is stored exactly once, in order, in contiguous revisions 1..N
    assert_exactly_once(read_revisions(s3, env.settings.store_bucket), sources)
    assert_moved(s3, site, sources)


@pytest.mark.timeout(60)
def test_a_writer_fenced_off_leaves_the_bad_row_report_of_the_revision_intact(
        env: Env, s3: S3, site: SiteConfig, processes: Processes) -> None:
    # Given a file with a bad row every 100 records, imported in revisions of 5 000 events
    source = Source("accounts-1.csv", "a", 30_050, bad_every=100)
    upload(s3, site, [source])
    bucket = env.settings.store_bucket
    # When the rightful writer commits revisions 1..3 and is asked to stop
    writer = processes.python("writer", SCAN_WITHOUT_LEASE, "0", "5000", "2")
    assert outcome(writer) == "interrupted"
    assert EventStore(s3, bucket).latest_number(SITE) == 3
    # And a zombie (it read "no revision yet", stalled and lost its lease) wakes up and commits
    # what it converted up to its first checkpoint
    zombie = processes.python("zombie", ZOMBIE_COMMIT, source.key, "5000")
    assert outcome(zombie) == "fenced"
    # And the file is then finished
    scan_until_imported(env, s3, site, [source])

    # Then the zombie changed nothing: the file's bad-row report lists every bad row once,
    # and the bad rows stored for revision 1 are those of its range
    revisions = read_revisions(s3, bucket)
    assert_exactly_once(revisions, [source])
    assert_moved(s3, site, [source])
    one = revisions[0].meta
    stored = [int(r[0]) for r in csv.reader(io.StringIO(
        s3.read_bytes(bucket, rejects_key(SITE, 1, one.record_end)).decode("utf-8")))]
    assert stored == [n for n in source.bad_records() if one.record_start <= n <= one.record_end]


@pytest.mark.slow(14)
@pytest.mark.timeout(120)
def test_a_worker_frozen_past_its_lease_cannot_commit_over_its_successor(
        env: Env, s3: S3, site: SiteConfig, redis_client: redis.Redis,
        processes: Processes) -> None:
    # Given a worker importing a large file, with its first revision committed
    sources = [Source("accounts-1.csv", "a", 450_000, bad_every=40_000),
               Source("accounts-2.csv", "b", 30_000, bad_every=6_000)]
    upload(s3, site, sources)
    bucket = env.settings.store_bucket
    enqueue_scan(env)
    zombie = processes.worker("zombie")
    wait_until(lambda: revision_exists(s3, bucket, 1), 60, "the first revision", alive=zombie)
    # When the worker freezes mid-batch (SIGSTOP) and its lease vanishes (Redis is flushed)
    zombie.signal_group(signal.SIGSTOP)
    frozen_at = latest_meta(s3, bucket)
    assert frozen_at is not None and not frozen_at.ends_file
    redis_client.flushdb()
    # And another process takes over and imports everything
    scan_until_imported(env, s3, site, sources)
    final = EventStore(s3, bucket).latest_number(SITE)
    assert final > frozen_at.number
    # And the frozen worker then wakes up with its uncommitted batch
    zombie.signal_group(signal.SIGCONT)
    wait_until(lambda: LOST_RACE_LOG in zombie.log(), 30, "the zombie to meet the fence",
               alive=zombie)
    assert zombie.stop() == 0

    # Then its commit was refused: nothing was added, every row is there exactly once
    revisions = read_revisions(s3, bucket)
    assert len(revisions) == final
    assert_exactly_once(revisions, sources)
    assert_moved(s3, site, sources)


# -- 3. one writer per site ----------------------------------------------------------------------


@pytest.mark.slow(14)
@pytest.mark.timeout(120)
def test_worker_processes_given_many_scans_of_one_site_import_one_at_a_time(
        env: Env, s3: S3, services: Services, site: SiteConfig, processes: Processes) -> None:
    # Given a site with a large file and a second one, and three idle worker processes
    sources = [Source("accounts-1.csv", "a", 700_000, bad_every=90_000),
               Source("accounts-2.csv", "b", 40_000)]
    upload(s3, site, sources)
    bucket = services.settings.store_bucket
    fleet = processes.worker("fleet", processes=3)
    wait_until(lambda: fleet.log().count("Worker process is ready for action.") == 3, 60,
               "three worker processes", alive=fleet)
    # When six scan messages for the site arrive at once
    broker = Publisher.for_redis(services.redis)
    for _ in range(6):
        broker.publish(scan_message(SITE))

    def handled() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        samples = scrape(fleet)
        if samples is None:
            return None
        done = metric(samples, "bucketbridge_job_duration_seconds_count", **SCAN_JOB)
        return samples if done == 6 else None

    samples = wait_until(handled, 90, "six scans handled", alive=fleet, interval_s=0.2)
    assert fleet.stop() == 0

    # Then exactly one scan imported (one process wrote every revision, none lost a race) and
    # the others were turned away by the lease or found nothing left to do
    log = fleet.log()
    writers = Counter(pid for pid, _ in REVISION_LOG.findall(log))
    written = sorted(int(n) for _, n in REVISION_LOG.findall(log))
    revisions = read_revisions(s3, bucket)
    assert len(writers) == 1, f"revisions written by several processes: {writers}"
    assert written == list(range(1, len(revisions) + 1))
    busy = metric(samples, "bucketbridge_lease_busy_total", **SCAN_JOB)
    outcomes = {o: metric(samples, "bucketbridge_job_duration_seconds_count", **SCAN_JOB,
                          outcome=o) for o in ("done", "busy", "budget", "lost_race", "error")}
    assert busy >= 1, "no scan ever found the site busy: the test proved nothing"
    assert outcomes == {"done": 6 - busy, "busy": busy, "budget": 0, "lost_race": 0, "error": 0}
    assert LOST_RACE_LOG not in log
    importing = [int(rows) for _, rows in SCAN_LOG.findall(log) if int(rows)]
    assert importing == [sum(s.rows - len(s.bad_records()) for s in sources)]
    # And all rows landed exactly once
    assert_exactly_once(revisions, sources)
    assert_moved(s3, site, sources)


# -- 4. finished but not moved --------------------------------------------------------------------

DIE_DURING_MOVE = """
import os, signal, sys

from shared.imports.scan import Importer
from shared.store.s3 import S3, make_client
from shared.services import Services
from shared.settings import Settings

step, doomed = sys.argv[1], sys.argv[2]


class DyingS3(S3):
    def copy(self, src_bucket, src_key, *args, **kwargs):
        if step == "copy" and src_key == doomed:
            os.kill(os.getpid(), signal.SIGKILL)
        super().copy(src_bucket, src_key, *args, **kwargs)

    def delete(self, bucket, key):
        if step == "delete" and key == doomed:
            os.kill(os.getpid(), signal.SIGKILL)
        super().delete(bucket, key)


settings = Settings.from_env()
svc = Services.build(settings, s3=DyingS3(make_client(settings.s3_endpoint_url)))
site = svc.sites.get("acme")
Importer(svc.store, svc.reports, svc.tail_cache, svc.clock, svc.metrics).scan(
    site, svc.access.for_site(site), settings.import_budget_s)
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize("dies_at", ["copy", "delete"])
def test_a_file_finished_but_not_moved_is_moved_without_importing_it_again(
        dies_at: str, env: Env, s3: S3, site: SiteConfig) -> None:
    # Given a file imported to its last revision, and a second file waiting behind it
    sources = [Source("accounts-1.csv", "a", 150_000, bad_every=20_000),
               Source("accounts-2.csv", "b", 20_000, bad_every=3_000)]
    upload(s3, site, sources)
    bucket = env.settings.store_bucket
    # When the importing process is SIGKILLed right before it copies the file to
    # completed_imports/ (or right after the copy, before it deletes the original)
    died = subprocess.run([sys.executable, "-c", DIE_DURING_MOVE, dies_at, "accounts-1.csv"],
                          env=env.as_dict(), cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    assert died.returncode == -signal.SIGKILL, died.stderr
    before = read_revisions(s3, bucket)
    assert [r.meta.source_key for r in before] == ["accounts-1.csv"] * 2
    assert before[-1].meta.ends_file
    copied = [k for k in import_keys(s3, site) if k.startswith(COMPLETED_PREFIX)
              and k.endswith("/accounts-1.csv")]
    assert len(copied) == (1 if dies_at == "delete" else 0)
    assert pending(s3, site, sources) == ["accounts-1.csv", "accounts-2.csv"]
    # And the site is scanned again by a real worker (``bucketbridge drain``)
    scan_until_imported(env, s3, site, sources)

    # Then the move was completed, no row of the first file was imported again, and the
    # second file followed
    revisions = read_revisions(s3, bucket)
    assert [r.meta for r in revisions[:2]] == [r.meta for r in before]
    assert_exactly_once(revisions, sources)
    assert_moved(s3, site, sources)


def stored_lines(revisions: list[Revision]) -> list[dict[str, Any]]:
    return [orjson.loads(line) for r in revisions for line in r.body.splitlines()]


@pytest.mark.timeout(90)
def test_a_file_ending_exactly_on_a_revision_boundary_is_not_reported_as_failed_later(
        env: Env, s3: S3, site: SiteConfig) -> None:
    # Given a file with exactly one revision's worth of rows, imported and moved
    source = Source("accounts.csv", "a", ROWS_PER_REVISION)
    upload(s3, site, [source])
    scan_until_imported(env, s3, site, [source])
    # When the site is scanned again, with nothing new
    enqueue_scan(env)
    drain(env)
    # Then the file is not reported as failed ("deleted before its import finished")
    assert_moved(s3, site, [source])
    # And its last revision is the one that says the file was finished
    assert_exactly_once(read_revisions(s3, env.settings.store_bucket), [source])


@pytest.mark.timeout(90)
def test_the_next_file_of_the_same_name_after_a_revision_boundary_file_is_imported(
        env: Env, s3: S3, site: SiteConfig) -> None:
    # Given a file with exactly one revision's worth of rows, imported and moved
    first = Source("accounts.csv", "a", ROWS_PER_REVISION)
    upload(s3, site, [first])
    scan_until_imported(env, s3, site, [first])
    # When the next day's file arrives under the same name and the site is scanned
    second = Source("accounts.csv", "b", 5_000, bad_every=1_000)
    upload(s3, site, [second])
    enqueue_scan(env)
    drain(env)
    # Then it is imported in full, after the first, and nothing failed
    assert [k for k in import_keys(s3, site) if k.startswith(FAILED_PREFIX)] == []
    assert pending(s3, site, [second]) == []
    revisions = read_revisions(s3, env.settings.store_bucket)
    # (the first file's last revision holds no events: it says the file ended right after
    # a full revision)
    assert [r.meta.number for r in revisions] == [1, 2, 3]
    assert (revisions[1].meta.events, revisions[1].meta.file_end) == (0, FileEnd.DONE)
    assert stored_lines(revisions[:2]) == list(first.expected_lines())
    assert stored_lines(revisions[2:]) == list(second.expected_lines())


# -- 5. Redis is disposable ----------------------------------------------------------------------


@pytest.mark.slow(14)
@pytest.mark.timeout(120)
def test_flushing_redis_mid_run_neither_loses_nor_duplicates_rows(
        env: Env, s3: S3, site: SiteConfig, redis_client: redis.Redis,
        processes: Processes) -> None:
    # Given a worker importing a large file (seconds of work), with its first revision committed
    sources = [Source("accounts-1.csv", "a", 900_000, bad_every=70_000),
               Source("accounts-2.csv", "b", 60_000, bad_every=8_000)]
    upload(s3, site, sources)
    bucket = env.settings.store_bucket
    enqueue_scan(env)
    worker = processes.worker("w1")
    wait_until(lambda: revision_exists(s3, bucket, 1), 60, "the first revision", alive=worker)
    # When Redis is flushed in the middle of the run (queues, lease, caches: all gone)
    redis_client.flushdb()
    at_flush = latest_meta(s3, bucket)
    assert at_flush is not None and at_flush.source_key == "accounts-1.csv"
    assert not at_flush.ends_file
    # And the site is scanned again at once (enqueue + drain) while that worker, unaware that
    # its lease is gone, goes on
    scan_until_imported(env, s3, site, sources)
    assert worker.stop() == 0

    # Then every row is there exactly once, in order, and both files were moved
    assert_exactly_once(read_revisions(s3, bucket), sources)
    assert_moved(s3, site, sources)


# -- 6. graceful shutdown ------------------------------------------------------------------------


@pytest.mark.slow(14)
@pytest.mark.timeout(120)
def test_sigterm_mid_file_commits_and_exits_promptly_and_the_next_scan_finishes(
        env: Env, s3: S3, services: Services, site: SiteConfig, processes: Processes) -> None:
    # Given a worker (budget 60 s) importing a large gzipped file, first revision committed
    # (the file, converted by the pure Python engine, outlasts the second dramatiq may take
    # to pass SIGTERM on: the compiled one imports it whole within that second; its own
    # checkpoint stops are tested in process, tests/shared/imports/test_bounded_runs.py)
    budget_s = 60
    sources = [Source("accounts-1.csv.gz", "a", 900_000, bad_every=50_000),
               Source("accounts-2.csv", "b", 30_000, bad_every=5_000)]
    upload(s3, site, sources)
    bucket = services.settings.store_bucket
    enqueue_scan(env)
    worker = processes.worker("w1", budget_s=budget_s, BUCKETBRIDGE_CSV_ENGINE="python")
    wait_until(lambda: revision_exists(s3, bucket, 1), 60, "the first revision", alive=worker)
    # When the worker is asked to stop (SIGTERM to the dramatiq main process)
    asked_at = time.monotonic()
    worker.popen.send_signal(signal.SIGTERM)
    code = worker.popen.wait(timeout=budget_s + 30)
    took_s = time.monotonic() - asked_at

    # Then it exits cleanly at its next checkpoint, long before its budget would have run out
    assert code == 0, worker.log()[-3000:]
    assert took_s < 20, f"took {took_s:.1f}s to stop"
    # And what it converted was committed: the scan reported an interrupted run (not its
    # budget) at the next record
    last = latest_meta(s3, bucket)
    assert last is not None and last.source_key == "accounts-1.csv.gz" and not last.ends_file, \
        f"stopped after {took_s:.1f}s at {last}"
    status = services.statuses.read(SITE, "scan")
    assert status.outcome == "interrupted"
    assert status.details is not None
    assert (status.details["current_file"], status.details["next_record"]) == \
        ("accounts-1.csv.gz", last.record_end + 1)
    assert pending(s3, site, sources) == [s.key for s in sources]
    # And the next scan finishes the file: every row exactly once
    scan_until_imported(env, s3, site, sources)
    assert_exactly_once(read_revisions(s3, bucket), sources)
    assert_moved(s3, site, sources)
