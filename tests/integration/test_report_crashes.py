"""Reports survive crashes as the rows do (DESIGN.md invariants 1 and 5).

A real process scans a site through an S3 client that, right after one chosen write was
*applied* by moto's S3 server, either dies (SIGKILL), loses the reply (a read timeout: the
write is there, the process does not know it), or loses the reply and retries the request as
botocore would (a conditional write then finds its own object).  Then the site is scanned
again until every file is handled, and the outcome is checked whole:

- every valid row is in exactly one revision, in file order;
- every bad file has exactly one report, beside its copy in ``failed_imports/``, that names
  where the file went and how many of its records were imported;
- every ``.errors.csv`` lists exactly its file's bad records;
- nothing else was written in the customer's bucket, and nothing is left at its first key.

Each window is one write of the finishing sequence (``shared/imports/finish.py``): a bad-row
report, the revision that ends a file, the report beside it, the copy, the delete.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from shared.clock import FrozenClock
from shared.formats.times import utc_datetime
from shared.imports.scan import Importer
from shared.services import Services
from shared.store.revisions import FileEnd, RevisionMeta
from shared.store.revisionwriter import Limits
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.conftest import REPO, Env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NOW_S = 1_767_225_599.0  # 2025-12-31T23:59:59Z: a second before a new day's folders
T0 = 1_700_000_000
PER_REVISION = 40
HEADER = "Identity,Timestamp,Event,Prop:Note\n"

# One scan of site acme in this process, through an S3 client that faults once, right after
# the N-th applied request of one kind whose key (and, for a put, its bb-file-end) matches.
FAULTY_SCAN = """
import os, re, signal, sys

import botocore.exceptions

from shared.clock import FrozenClock
from shared.imports.scan import Importer
from shared.services import Services
from shared.settings import Settings
from shared.store.revisionwriter import Limits
from shared.store.s3 import S3, make_client

now_s, per_revision = float(sys.argv[1]), int(sys.argv[2])
op, pattern, nth, mode = sys.argv[3], re.compile(sys.argv[4]), int(sys.argv[5]), sys.argv[6]


class Faulty:
    def __init__(self, client):
        self.client, self.seen = client, 0

    def __getattr__(self, name):
        return getattr(self.client, name)

    def _call(self, kind, method, what, kwargs):
        result = getattr(self.client, method)(**kwargs)
        if kind == op and pattern.search(what):
            self.seen += 1
            if self.seen == nth:
                print(f"FAULT {mode} after {kind} {what}", file=sys.stderr, flush=True)
                if mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                if mode == "retry":  # the reply was lost; botocore sends the request again
                    return getattr(self.client, method)(**kwargs)
                raise botocore.exceptions.ReadTimeoutError(endpoint_url="moto")
        return result

    def put_object(self, **kw):
        end = kw.get("Metadata", {}).get("bb-file-end", "")
        return self._call("put", "put_object", f"{kw['Key']} {end}".strip(), kw)

    def copy_object(self, **kw):
        return self._call("copy", "copy_object", kw["Key"], kw)

    def copy(self, CopySource, Bucket, Key, **kw):  # boto3's managed copy
        kw.update(CopySource=CopySource, Bucket=Bucket, Key=Key)
        return self._call("copy", "copy", Key, kw)

    def delete_object(self, **kw):
        return self._call("delete", "delete_object", kw["Key"], kw)


settings = Settings.from_env()
clock = FrozenClock(now_s)
s3 = S3(Faulty(make_client(settings.s3_endpoint_url)))
svc = Services.build(settings, s3=s3, clock=clock)
site = svc.sites.get("acme")
importer = Importer(svc.store, svc.reports, svc.tail_cache, clock, svc.metrics,
                    Limits(max_events_per_revision=per_revision))
result = importer.scan(site, s3, 60)
print("outcome", result.outcome, "failed", len(result.files_failed), file=sys.stderr)
"""


# -- the files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """An import file of ``rows`` data records; the records numbered in ``bad`` are invalid."""

    key: str
    tag: str
    rows: int
    bad: frozenset[int] = frozenset()

    def cells(self, record: int) -> list[str]:
        identity, timestamp = f"{self.tag}{record}", str(T0 + record)
        if record in self.bad:
            timestamp = f"{T0 + record}000"  # milliseconds: rejected
        # An incompressible note, so a gzip holds about as many rows as its size says
        note = hashlib.sha256(f"{self.tag}{record}".encode()).hexdigest()
        return [identity, timestamp, "Did", note]

    @property
    def text(self) -> bytes:
        out = io.StringIO()
        out.write(HEADER)
        csv.writer(out, lineterminator="\n").writerows(
            self.cells(r) for r in range(1, self.rows + 1))
        return out.getvalue().encode()

    def lines(self) -> Iterator[dict[str, Any]]:
        for record in range(1, self.rows + 1):
            if record not in self.bad:
                identity, timestamp, event, note = self.cells(record)
                yield {"_p": identity, "_t": int(timestamp), "_n": event, "Note": note}


# 98 valid rows: revisions 1 and 2 full (40 per revision), the last with 18 and the bad rows
# met since revision 2, among them a stretch of only bad rows at the very end.
COMPLETED = Source("accounts-1.csv", "a", 110, frozenset({3, 41, 42, 90, *range(103, 111)}))
LATER = Source("accounts-9.csv", "z", 5)
NO_HEADER = b"u1,1700000001,E1\nu2,1700000002,E2\n"
NO_HEADER_REASON = ("no header row: the first line ('u1,1700000001,E1') names none of the "
                    "columns Identity, Timestamp, Event, Alias, Prop:<Name>")
PARTIAL = Source("accounts-3.csv.gz", "g", 30_000)
PARTIAL_PER_REVISION = 4_000


def truncated_gzip(source: Source) -> bytes:
    whole = gzip.compress(source.text, compresslevel=1)
    return whole[: len(whole) // 2]


# -- reading the outcome back -----------------------------------------------------------------


def revisions(services: Services) -> list[tuple[RevisionMeta, bytes]]:
    out = []
    for info in services.store.objects("acme"):
        head = services.store_s3.head(services.settings.store_bucket, info.key)
        assert head is not None
        out.append((RevisionMeta.from_metadata(head.metadata),
                    services.store_s3.read_bytes(services.settings.store_bucket, info.key)))
    return out


def lines_of(revs: list[tuple[RevisionMeta, bytes]], key: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for meta, body in revs if meta.source_key == key
            for x in body.splitlines()]


def report_records(s3: S3, bucket: str, key: str) -> list[int]:
    rows = list(csv.reader(io.StringIO(s3.read_bytes(bucket, key).decode())))
    assert rows[0] == ["Record", "Line", "Reason", "Content"]
    return [int(r[0]) for r in rows[1:]]


def day(now_s: float) -> str:
    return f"{utc_datetime(now_s):%Y/%m/%d}"


# -- running ----------------------------------------------------------------------------------


def faulty_scan(env: Env, op: str, pattern: str, nth: int, mode: str,
                now_s: float = NOW_S, per_revision: int = PER_REVISION,
                ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-c", FAULTY_SCAN, str(now_s), str(per_revision),
                           op, pattern, str(nth), mode], env=env.as_dict(), cwd=REPO,
                          capture_output=True, text=True, timeout=90, check=False)
    assert f"FAULT {mode} after {op}" in done.stderr, \
        f"the fault never fired (the window was not reached):\n{done.stderr[-3000:]}"
    if mode == "kill":
        assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    elif mode == "lose":
        assert done.returncode != 0 and "StorageUnavailable" in done.stderr, done.stderr[-3000:]
    return done


def scan_until_done(services: Services, site: SiteConfig, now_s: float = NOW_S,
                    per_revision: int = PER_REVISION) -> None:
    importer = Importer(services.store, services.reports, services.tail_cache,
                        FrozenClock(now_s), services.metrics,
                        Limits(max_events_per_revision=per_revision))
    s3 = services.store_s3
    for _ in range(4):
        importer.scan(site, s3, 60)
        if not [i for i in s3.list(site.import_bucket) if "/" not in i.key]:
            return
    pytest.fail(f"files still waiting: {[i.key for i in s3.list(site.import_bucket)]}")


def import_keys(s3: S3, bucket: str) -> set[str]:
    return {i.key for i in s3.list(bucket)}


# -- a file that completes, with bad rows -----------------------------------------------------

MODES = ["kill", "lose"]
COMPLETED_WINDOWS = [
    # (id, operation, key pattern, which match, the modes)
    ("bad-row-report-of-revision-1", "put", r"sites/acme/rejects/000000000001-", 1, MODES),
    ("bad-row-report-of-the-last-revision", "put", r"sites/acme/rejects/000000000003-", 1,
     MODES),
    ("revision-2", "put", r"sites/acme/revisions/000000000002\.json open", 1, [*MODES, "retry"]),
    ("the-revision-ending-the-file", "put", r"sites/acme/revisions/\d+\.json done", 1,
     [*MODES, "retry"]),
    ("errors-csv", "put", r"accounts-1\.csv\.errors\.csv", 1, MODES),
    ("copy", "copy", r"^completed_imports/.*accounts-1\.csv$", 1, [*MODES, "retry"]),
    ("delete", "delete", r"^accounts-1\.csv$", 1, [*MODES, "retry"]),
    # the later file has no bad row: its report is neither gathered nor written
    ("clean-file-revision", "put", r"sites/acme/revisions/000000000004\.json done", 1, MODES),
    ("clean-file-copy", "copy", r"^completed_imports/.*accounts-9\.csv$", 1, MODES),
    ("clean-file-delete", "delete", r"^accounts-9\.csv$", 1, MODES),
]


def _cases(windows: list[Any]) -> list[Any]:
    return [pytest.param(op, pattern, nth, mode, id=f"{name}-{mode}")
            for name, op, pattern, nth, modes in windows for mode in modes]


@pytest.mark.parametrize(("op", "pattern", "nth", "mode"), _cases(COMPLETED_WINDOWS))
def test_a_completed_file_keeps_every_row_once_and_exactly_its_bad_rows_report(
        env: Env, s3: S3, services: Services, site: SiteConfig, op: str, pattern: str,
        nth: int, mode: str) -> None:
    # Given a file with bad rows (a stretch of only bad rows at its end) and a later file
    bucket = site.import_bucket
    s3.put(bucket, COMPLETED.key, COMPLETED.text)
    s3.put(bucket, LATER.key, LATER.text)
    # When the scan's process faults right after the write of one window was applied
    faulty_scan(env, op, pattern, nth, mode)
    # And the site is scanned again until every file is handled
    scan_until_done(services, site)
    # Then every valid row is stored once, in order, in revisions 1..N
    revs = revisions(services)
    assert [m.number for m, _ in revs] == list(range(1, len(revs) + 1))
    assert lines_of(revs, COMPLETED.key) == list(COMPLETED.lines())
    assert lines_of(revs, LATER.key) == list(LATER.lines())
    assert [m.events for m, _ in revs if m.source_key == COMPLETED.key] == [40, 40, 18]
    # And each file is completed once, the first with exactly its bad records reported
    done = f"completed_imports/{day(NOW_S)}"
    assert import_keys(s3, bucket) == {f"{done}/{COMPLETED.key}",
                                       f"{done}/{COMPLETED.key}.errors.csv",
                                       f"{done}/{LATER.key}"}
    assert report_records(s3, bucket, f"{done}/{COMPLETED.key}.errors.csv") == \
        sorted(COMPLETED.bad)
    assert s3.read_bytes(bucket, f"{done}/{COMPLETED.key}") == COMPLETED.text


# -- a file that fails before any of it is imported -------------------------------------------

FAILED_WINDOWS = [
    ("error-txt", "put", r"accounts-2\.csv\.error\.txt", 1, MODES),
    ("copy", "copy", r"^failed_imports/.*accounts-2\.csv$", 1, [*MODES, "retry"]),
    ("delete", "delete", r"^accounts-2\.csv$", 1, [*MODES, "retry"]),
]


def assert_one_failure_report(s3: S3, bucket: str, key: str, body: bytes, now_s: float,
                              reason: str, imported: str) -> None:
    failed = f"failed_imports/{day(now_s)}/{key}"
    assert s3.read_bytes(bucket, failed) == body
    report = s3.read_bytes(bucket, f"{failed}.error.txt").decode()
    assert f"Reason: {reason}\n" in report
    assert imported in report
    assert f"The file was moved to s3://{bucket}/{failed}\n" in report


@pytest.mark.parametrize(("op", "pattern", "nth", "mode"), _cases(FAILED_WINDOWS))
def test_a_bad_file_gets_exactly_one_report_beside_its_copy(
        env: Env, s3: S3, services: Services, site: SiteConfig, op: str, pattern: str,
        nth: int, mode: str) -> None:
    bucket = site.import_bucket
    s3.put(bucket, "accounts-2.csv", NO_HEADER)
    s3.put(bucket, LATER.key, LATER.text)
    faulty_scan(env, op, pattern, nth, mode)
    scan_until_done(services, site)
    failed = f"failed_imports/{day(NOW_S)}/accounts-2.csv"
    assert import_keys(s3, bucket) == {failed, f"{failed}.error.txt",
                                       f"completed_imports/{day(NOW_S)}/{LATER.key}"}
    assert_one_failure_report(s3, bucket, "accounts-2.csv", NO_HEADER, NOW_S, NO_HEADER_REASON,
                              "No record of this file was imported.\n")
    assert lines_of(revisions(services), LATER.key) == list(LATER.lines())


def test_a_bad_file_whose_scan_died_before_midnight_is_reported_once_after_it(
        env: Env, s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a bad file whose report was written at 23:59:59 by a process killed right after
    bucket = site.import_bucket
    s3.put(bucket, "accounts-2.csv", NO_HEADER)
    faulty_scan(env, "put", r"accounts-2\.csv\.error\.txt", 1, "kill")
    # When the next scan runs after midnight
    scan_until_done(services, site, now_s=NOW_S + 2)
    # Then the file went where its report already was: one report, naming its copy
    failed = f"failed_imports/{day(NOW_S)}/accounts-2.csv"
    assert import_keys(s3, bucket) == {failed, f"{failed}.error.txt"}
    assert_one_failure_report(s3, bucket, "accounts-2.csv", NO_HEADER, NOW_S, NO_HEADER_REASON,
                              "No record of this file was imported.\n")


# -- a file that fails after some of it was imported ------------------------------------------

PARTIAL_WINDOWS = [
    ("the-revision-recording-the-failure", "put", r"sites/acme/revisions/\d+\.json failed", 1,
     [*MODES, "retry"]),
    ("error-txt", "put", r"accounts-3\.csv\.gz\.error\.txt", 1, MODES),
    ("copy", "copy", r"^failed_imports/.*accounts-3\.csv\.gz$", 1, MODES),
    ("delete", "delete", r"^accounts-3\.csv\.gz$", 1, MODES),
]
GZIP_REASON = ("not a valid gzip file: Compressed file ended before the end-of-stream marker "
               "was reached")


@pytest.mark.parametrize(("op", "pattern", "nth", "mode"), _cases(PARTIAL_WINDOWS))
def test_a_file_failing_half_way_keeps_its_rows_and_gets_one_report(
        env: Env, s3: S3, services: Services, site: SiteConfig, op: str, pattern: str,
        nth: int, mode: str) -> None:
    # Given a gzip file cut in the middle: revisions are committed before the damage
    bucket = site.import_bucket
    body = truncated_gzip(PARTIAL)
    s3.put(bucket, PARTIAL.key, body)
    s3.put(bucket, LATER.key, LATER.text)
    faulty_scan(env, op, pattern, nth, mode, per_revision=PARTIAL_PER_REVISION)
    scan_until_done(services, site, per_revision=PARTIAL_PER_REVISION)
    # Then the rows committed before the damage are a prefix of the file's, stored once
    revs = revisions(services)
    mine = [m for m, _ in revs if m.source_key == PARTIAL.key]
    stored = lines_of(revs, PARTIAL.key)
    assert len(stored) >= PARTIAL_PER_REVISION
    assert stored == list(itertools.islice(PARTIAL.lines(), len(stored)))
    # And the file's last revision records the failure, once
    assert [m.file_end for m in mine] == [FileEnd.OPEN] * (len(mine) - 1) + [FileEnd.FAILED]
    end = mine[-1]
    # And the report says how far the import got, beside the copy
    failed = f"failed_imports/{day(NOW_S)}/{PARTIAL.key}"
    assert import_keys(s3, bucket) == {failed, f"{failed}.error.txt",
                                       f"completed_imports/{day(NOW_S)}/{LATER.key}"}
    assert_one_failure_report(
        s3, bucket, PARTIAL.key, body, NOW_S, GZIP_REASON,
        f"Records 1..{end.record_end} were imported (revisions {mine[0].number}.."
        f"{end.number - 1}) before the failure.\n")
    assert end.record_end == len(stored)
    assert lines_of(revs, LATER.key) == list(LATER.lines())


# -- a file deleted before its import finished ------------------------------------------------

VANISHED_WINDOWS = [
    ("error-txt", "put", r"accounts-1\.csv\.error\.txt", 1, MODES),
    ("the-revision-recording-the-failure", "put", r"sites/acme/revisions/\d+\.json failed", 1,
     [*MODES, "retry"]),
]


@pytest.mark.parametrize(("op", "pattern", "nth", "mode"), _cases(VANISHED_WINDOWS))
def test_a_file_deleted_mid_import_is_reported_once(
        env: Env, s3: S3, services: Services, site: SiteConfig, op: str, pattern: str,
        nth: int, mode: str) -> None:
    # Given a file half imported (one revision), then deleted by the customer
    bucket = site.import_bucket
    s3.put(bucket, COMPLETED.key, COMPLETED.text)
    importer = Importer(services.store, services.reports, services.tail_cache,
                        FrozenClock(NOW_S), services.metrics,
                        Limits(max_events_per_revision=PER_REVISION))
    answers = iter([False])
    importer.scan(site, s3, 60, should_stop=lambda: next(answers, True))
    assert services.store.latest_number("acme") == 1
    s3.delete(bucket, COMPLETED.key)
    s3.put(bucket, LATER.key, LATER.text)
    # When the scan that finds it gone faults at one step of reporting it
    faulty_scan(env, op, pattern, nth, mode)
    scan_until_done(services, site)
    # Then it is reported once, and its end is recorded once
    failed = f"failed_imports/{day(NOW_S)}/{COMPLETED.key}"
    assert import_keys(s3, bucket) == {f"{failed}.error.txt",
                                       f"completed_imports/{day(NOW_S)}/{LATER.key}"}
    report = s3.read_bytes(bucket, f"{failed}.error.txt").decode()
    assert re.search(r"Reason: file was deleted before its import finished \(records 1\.\.43 "
                     r"were imported, up to revision 1\)\n", report), report
    revs = revisions(services)
    assert [(m.source_key, m.file_end) for m, _ in revs] == [
        (COMPLETED.key, FileEnd.OPEN), (COMPLETED.key, FileEnd.FAILED),
        (LATER.key, FileEnd.DONE)]
