"""Reimport: a file of export lines back into a site's event store, exactly once.

The lines become revisions of the site (``source="reimport"``), written by the same
``RevisionWriter`` as the CSV import, with their ``_t`` kept.  The file's identity is the
SHA-256 of its (decompressed) content, recorded in each revision's ``source_etag`` with the
line and byte range the revision covers, so progress is recoverable from the revisions alone:
writing a revision **is** the commit of the lines in it.

A run holds the site's import lease (no scan writes meanwhile) and then:

1. reads the progress marker (``shared.store.reimportmarkers``), creating it before the first
   revision;
2. catches up: looks at the revisions above the marker's ``checked_through``, newest first,
   for the newest one of this file (a run that died between a revision and the marker's
   update left it there);
3. continues after that revision's ``byte_end``, one conditional PUT per batch, the marker
   rewritten after each; ``RevisionExists`` means another writer got there: it stops.

A rerun after a crash therefore imports no line twice and skips none.  The CSV import's cursor
walks back over reimport revisions, so the recurring import goes on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

import orjson

from shared.clock import Clock
from shared.errors import PreconditionFailed, RetryableError, SiteBusy
from shared.fleet.hints import RevisionTailCache
from shared.fleet.leases import DEFAULT_LEASE_TTL_S, IMPORT_LEASE, Lease
from shared.fleet.redisconn import RedisClient
from shared.formats.exportlines import ALIAS, TIME, Line, LineScanner, Problem, Problems
from shared.formats.rejects import Reject
from shared.formats.streams import Opened
from shared.formats.times import iso_utc, timestamp_problem
from shared.imports.cursor import Revisions
from shared.metrics import Metrics
from shared.store.reimportmarkers import Marker, MarkerStore
from shared.store.rejectreports import RejectReports
from shared.store.revisions import EventStore, FileEnd, RevisionExists, RevisionMeta
from shared.store.revisionwriter import Batch, Limits, RevisionWriter, SourceRange

logger = logging.getLogger(__name__)

REIMPORT_SOURCE = "reimport"  # RevisionMeta.source of reimported lines
_CHECK_EVERY_LINES = 2048

ByteCounter = Callable[[int], None]


def no_progress(_n: int) -> None:
    return None


class OneFile(Protocol):
    """The file to reimport, wherever it is (the file tools' ``Input.only_file()``)."""

    @property
    def name(self) -> str: ...

    def describe(self) -> str: ...

    def open(self, *, start_byte: int = 0, gzipped: bool | None = None,
             on_bytes: ByteCounter = no_progress,
             tap: Callable[[bytes], object] | None = None) -> Opened: ...


class ReimportConflict(RetryableError):
    """Another writer created the revision this reimport was about to write."""


class ReimportOutcome(StrEnum):
    DONE = "done"
    STOPPED = "stopped"  # asked to stop, work left: running the same command again goes on
    ALREADY = "already"  # the file was reimported before: nothing left to do


def storable(line: Line) -> str | None:
    """Why a valid export line cannot go into the store (``None``: it can)."""
    t = line.get(TIME)
    if t is None:
        return None if ALIAS in line else "missing _t (only alias lines may have no timestamp)"
    problem = timestamp_problem(t)
    return None if problem is None else f"_t {t} is {problem}"


@dataclass(frozen=True)
class CheckedFile:
    """The file to reimport, as the first pass found it."""

    name: str
    file_id: str  # "sha256:<hex>" of the decompressed content
    gzipped: bool
    size_bytes: int  # decompressed
    lines: int
    rejected: int


def check_file(file: OneFile, problems: Problems, on_bytes: ByteCounter = no_progress
               ) -> CheckedFile:
    """The first pass: the file's id and every bad line, before anything is written (so a
    strict run stops with the store untouched)."""
    digest = hashlib.sha256()
    size = 0

    def tap(data: bytes) -> None:
        nonlocal size
        digest.update(data)
        size += len(data)

    before = problems.count
    with file.open(on_bytes=on_bytes, tap=tap) as opened:
        scanner = LineScanner(opened.file, file.describe(), problems, check=storable)
        for _ in scanner:
            pass
        gzipped = opened.gzipped
    return CheckedFile(name=file.name, file_id=f"sha256:{digest.hexdigest()}", gzipped=gzipped,
                       size_bytes=size, lines=scanner.line_number,
                       rejected=problems.count - before)


@dataclass
class ReimportResult:
    outcome: ReimportOutcome
    file_id: str
    first_revision: int | None = None  # of the file, over every run
    last_revision: int | None = None
    written: list[int] = field(default_factory=list)  # by this run
    lines_imported: int = 0  # by this run
    lines_rejected: int = 0
    next_line: int = 1  # where this run started; after it, where the next would


class Reimporter:
    def __init__(self, store: EventStore, reports: RejectReports, markers: MarkerStore,
                 redis_client: RedisClient, hints: RevisionTailCache, clock: Clock,
                 metrics: Metrics, *, limits: Limits | None = None,
                 lease_ttl_s: float = DEFAULT_LEASE_TTL_S) -> None:
        self.store = store
        self.reports = reports
        self.markers = markers
        self.redis = redis_client
        self.revisions = Revisions(store, hints)
        self.hints = hints
        self.clock = clock
        self.metrics = metrics
        self.limits = limits or Limits()
        self.lease_ttl_s = lease_ttl_s

    def run(self, site: str, file: OneFile, checked: CheckedFile, *,
            should_stop: Callable[[], bool] = lambda: False,
            on_bytes: ByteCounter = no_progress) -> ReimportResult:
        """Import the file's lines not yet in ``site``'s store, under the site's import lease.

        Returns at the end of the file or, with every written line committed, once
        ``should_stop()`` is true.  Raises ``SiteBusy`` if the lease is held, ``LeaseLost``
        if it is lost, and ``ReimportConflict`` if another writer took a revision number.
        """
        lease = Lease(self.redis, IMPORT_LEASE, site, ttl_s=self.lease_ttl_s)
        if not lease.acquire():
            raise SiteBusy(f"site {site} is busy: an import holds its lease; try again when "
                           "it is done")
        with lease:
            return self._run(site, file, checked, lease,
                             lambda: lease.lost or should_stop(), on_bytes)

    def _now(self) -> str:
        return iso_utc(self.clock.now_s())

    def _start(self, site: str, checked: CheckedFile, latest: int) -> Marker:
        marker = self.markers.read(site, checked.file_id)
        if marker is not None:
            return marker
        marker = Marker(file_id=checked.file_id, source_key=checked.name,
                        checked_through=latest, updated_at=self._now())
        try:
            self.markers.create(site, marker)
        except PreconditionFailed:  # created since we looked: a writer past its lease
            found = self.markers.read(site, checked.file_id)
            if found is None:
                raise
            return found
        return marker

    def _catch_up(self, site: str, marker: Marker, latest: int) -> Marker:
        """The marker advanced to the newest revision of this file above what it knew."""
        found = self.revisions.newest(
            site, latest, marker.checked_through,
            lambda m: m.source == REIMPORT_SOURCE and m.source_etag == marker.file_id)
        if found is None:
            return marker
        meta = found[0]
        logger.info("site=%s file=%s revision %d was written after the last progress marker; "
                    "continuing after it", site, marker.source_key, meta.number)
        return marker.after(meta, self._now())

    def _run(self, site: str, file: OneFile, checked: CheckedFile, lease: Lease,
             should_stop: Callable[[], bool], on_bytes: ByteCounter) -> ReimportResult:
        latest = self.revisions.latest(site)
        marker = self._catch_up(site, self._start(site, checked, latest), latest)
        result = ReimportResult(outcome=ReimportOutcome.DONE, file_id=checked.file_id,
                                first_revision=marker.first_revision,
                                last_revision=marker.last_revision, next_line=marker.line_end + 1)
        if marker.done:
            result.outcome = ReimportOutcome.ALREADY
            return result
        marker = replace(marker, checked_through=latest, updated_at=self._now())
        self.markers.write(site, marker)
        writer = RevisionWriter(self.store, self.reports, site, REIMPORT_SOURCE, self.clock,
                                self.metrics)
        batch = Batch(record_start=marker.line_end + 1, byte_start=marker.byte_end)

        def reject(problem: Problem) -> None:  # kept with the revision, as the CSV import's
            batch.rejects.append(Reject(problem.line, problem.line, "line", problem.reason, ""))

        rejects = Problems(report=reject)  # the first pass showed them; here they are kept
        with file.open(start_byte=marker.byte_end, gzipped=checked.gzipped,
                       on_bytes=on_bytes) as opened:
            scanner = LineScanner(opened.file, file.describe(), rejects,
                                  start_line=marker.line_end + 1, start_byte=marker.byte_end,
                                  check=storable)
            dumps = orjson.dumps
            since_check = 0
            for _text, line in scanner:
                batch.add(dumps(line), line.get(TIME))
                since_check += 1
                full = batch.full(self.limits)
                if not full and since_check < _CHECK_EVERY_LINES:
                    continue
                since_check = 0
                stop = should_stop()
                if full or stop:
                    marker = self._commit(writer, checked, batch, marker, scanner, lease,
                                          result, FileEnd.OPEN)
                    batch = Batch(record_start=scanner.line_number + 1,
                                  byte_start=scanner.position_bytes)
                if stop or should_stop():
                    result.outcome = ReimportOutcome.STOPPED
                    result.lines_rejected = rejects.count
                    result.next_line = marker.line_end + 1
                    return result
            if not batch.empty:
                marker = self._commit(writer, checked, batch, marker, scanner, lease, result,
                                      FileEnd.DONE)
            marker = replace(marker, done=True, byte_end=scanner.position_bytes,
                             line_end=scanner.line_number, updated_at=self._now())
        self.markers.write(site, marker)
        result.lines_rejected = rejects.count
        result.next_line = marker.line_end + 1
        logger.info("site=%s file=%s reimport done: revisions %s..%s", site, checked.name,
                    marker.first_revision, marker.last_revision)
        return result

    def _commit(self, writer: RevisionWriter, checked: CheckedFile, batch: Batch,
                marker: Marker, scanner: LineScanner, lease: Lease, result: ReimportResult,
                file_end: FileEnd) -> Marker:
        """Write ``batch`` as the next revision, then move the marker past it."""
        number = max(marker.checked_through, marker.last_revision or 0) + 1
        lease.check()
        try:
            meta: RevisionMeta = writer.commit(
                number, batch,
                SourceRange(checked.name, checked.file_id, scanner.line_number,
                            scanner.position_bytes, scanner.line_number),
                file_end=file_end, first_revision=marker.first_revision)
        except RevisionExists:
            raise ReimportConflict(
                f"revision {number} of site {writer.site} was written by another writer during "
                f"the reimport of {checked.name}; nothing was overwritten, and running the same "
                f"command again continues after line {marker.line_end}") from None
        self.hints.put(writer.site, number)
        marker = marker.after(meta, self._now())
        self.markers.write(writer.site, marker)
        result.written.append(number)
        result.lines_imported += batch.events
        result.first_revision = marker.first_revision
        result.last_revision = number
        return marker
