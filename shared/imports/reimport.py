"""Reimport: a file of export lines back into a site's event store, exactly once.

The lines become revisions of the site (``source="reimport"``), the same store the CSV import
writes, with their ``_t`` kept.  The file's identity is the SHA-256 of its (decompressed)
content, recorded in each revision's ``source_etag`` with the line and byte range the revision
covers, so progress is recoverable from the revisions alone: writing a revision **is** the
commit of the lines in it.

A run holds the site's import lease (no scan writes meanwhile) and then:

1. reads the progress marker (``progressmarker``), creating it before the first revision;
2. catches up: looks at the revisions above the marker's ``checked_through``, newest first,
   for the newest one of this file (a run that died between a revision and the marker's
   update left it there);
3. continues after that revision's ``byte_end``, one conditional PUT per batch, the marker
   rewritten after each; ``RevisionExists`` means another writer got there: it stops.

A rerun after a crash therefore imports no line twice and skips none.  ``Importer.latest``
walks back over reimport revisions to find the CSV cursor, so the recurring import goes on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import orjson
import redis

from shared.clock import Clock
from shared.errors import PreconditionFailed, RetryableError, SiteBusy, UserError
from shared.filetools.sources import ByteCounter, Input, no_progress
from shared.fleet.hints import RevisionTailCache
from shared.fleet.leases import DEFAULT_LEASE_TTL_S, IMPORT_LEASE, Lease
from shared.formats.exportlines import ALIAS, TIME, Line, LineScanner, Problems
from shared.formats.times import iso_utc, timestamp_problem
from shared.imports.filerun import Limits
from shared.metrics import Metrics
from shared.store.reimportmarkers import Marker, MarkerStore
from shared.store.revisions import EventStore, RevisionExists, RevisionMeta

logger = logging.getLogger(__name__)

REIMPORT_SOURCE = "reimport"  # RevisionMeta.source of reimported lines
_CHECK_EVERY_LINES = 2048


class ReimportConflict(RetryableError):
    """Another writer created the revision this reimport was about to write."""


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


def check_file(inp: Input, problems: Problems, on_bytes: ByteCounter = no_progress
               ) -> CheckedFile:
    """The first pass: the file's id and every bad line, before anything is written (so a
    strict run stops with the store untouched)."""
    if len(inp.parts) != 1:
        raise UserError(f"reimport reads one file, and {inp.location.describe()} holds "
                         f"{len(inp.parts)}; compile them into one first (files compile)")
    part = inp.parts[0]
    digest = hashlib.sha256()
    size = 0

    def tap(data: bytes) -> None:
        nonlocal size
        digest.update(data)
        size += len(data)

    before = problems.count
    with inp.open(part, on_bytes=on_bytes, tap=tap) as opened:
        scanner = LineScanner(opened.file, inp.describe(part), problems, check=storable)
        for _ in scanner:
            pass
        gzipped = opened.gzipped
    return CheckedFile(name=part.name, file_id=f"sha256:{digest.hexdigest()}", gzipped=gzipped,
                       size_bytes=size, lines=scanner.line_number,
                       rejected=problems.count - before)


@dataclass
class ReimportResult:
    outcome: str  # "done"; "stopped" (asked to, work left); "already" (nothing left to do)
    file_id: str
    first_revision: int | None = None  # of the file, over every run
    last_revision: int | None = None
    written: list[int] = field(default_factory=list)  # by this run
    lines_imported: int = 0  # by this run
    lines_rejected: int = 0
    next_line: int = 1  # where this run started; after it, where the next would


@dataclass
class _Batch:
    line_start: int
    byte_start: int
    rejected_before: int
    body: bytearray = field(default_factory=bytearray)
    events: int = 0
    min_t: int | None = None
    max_t: int | None = None

    def add(self, line: Line) -> None:
        self.body += orjson.dumps(line)
        self.body += b"\n"
        self.events += 1
        t = line.get(TIME)
        if t is not None:
            if self.min_t is None or t < self.min_t:
                self.min_t = t
            if self.max_t is None or t > self.max_t:
                self.max_t = t


class Reimporter:
    def __init__(self, store: EventStore, redis_client: redis.Redis,
                 tail_cache: RevisionTailCache, clock: Clock, *, metrics: Metrics | None = None,
                 limits: Limits | None = None, lease_ttl_s: float = DEFAULT_LEASE_TTL_S) -> None:
        self.store = store
        self.redis = redis_client
        self.tail_cache = tail_cache
        self.clock = clock
        self.metrics = metrics
        self.limits = limits or Limits()
        self.lease_ttl_s = lease_ttl_s
        self.markers = MarkerStore(store.s3, store.bucket)

    def run(self, site: str, inp: Input, checked: CheckedFile, *,
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
            return self._run(site, inp, checked, lease,
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
        for number in range(latest, marker.checked_through, -1):
            found = self.store.head(site, number)
            if found is None:
                continue
            meta = found[0]
            if meta.source == REIMPORT_SOURCE and meta.source_etag == marker.file_id:
                logger.info("site=%s file=%s revision %d was written after the last progress "
                            "marker; continuing after it", site, marker.source_key, number)
                return marker.after(meta, self._now())
        return marker

    def _run(self, site: str, inp: Input, checked: CheckedFile, lease: Lease,
             should_stop: Callable[[], bool], on_bytes: ByteCounter) -> ReimportResult:
        latest = self.store.latest_number(site, hint=self.tail_cache.get(site))
        marker = self._catch_up(site, self._start(site, checked, latest), latest)
        result = ReimportResult(outcome="done", file_id=checked.file_id,
                                first_revision=marker.first_revision,
                                last_revision=marker.last_revision, next_line=marker.line_end + 1)
        if marker.done:
            result.outcome = "already"
            return result
        marker = replace(marker, checked_through=latest, updated_at=self._now())
        self.markers.write(site, marker)
        rejects = Problems.silenced()  # the first pass reported them; here they are counted
        part = inp.parts[0]
        with inp.open(part, start_byte=marker.byte_end, gzipped=checked.gzipped,
                      on_bytes=on_bytes) as opened:
            scanner = LineScanner(opened.file, inp.describe(part), rejects,
                                  start_line=marker.line_end + 1, start_byte=marker.byte_end,
                                  check=storable)
            batch = _Batch(marker.line_end + 1, marker.byte_end, 0)
            max_events = self.limits.max_events_per_revision
            max_bytes = self.limits.max_revision_bytes
            since_check = 0
            for _text, line in scanner:
                batch.add(line)
                since_check += 1
                full = batch.events >= max_events or len(batch.body) >= max_bytes
                if not full and since_check < _CHECK_EVERY_LINES:
                    continue
                since_check = 0
                stop = should_stop()
                if full or stop:
                    marker = self._commit(site, checked, batch, marker, scanner, rejects,
                                          lease, result, file_done=False)
                    batch = _Batch(scanner.line_number + 1, scanner.position_bytes,
                                   rejects.count)
                if stop or should_stop():
                    result.outcome = "stopped"
                    result.lines_rejected = rejects.count
                    result.next_line = marker.line_end + 1
                    return result
            if batch.events:
                marker = self._commit(site, checked, batch, marker, scanner, rejects, lease,
                                      result, file_done=True)
            marker = replace(marker, done=True, byte_end=scanner.position_bytes,
                             line_end=scanner.line_number, updated_at=self._now())
        self.markers.write(site, marker)
        result.lines_rejected = rejects.count
        result.next_line = marker.line_end + 1
        logger.info("site=%s file=%s reimport done: revisions %s..%s", site, checked.name,
                    marker.first_revision, marker.last_revision)
        return result

    def _commit(self, site: str, checked: CheckedFile, batch: _Batch, marker: Marker,
                scanner: LineScanner, rejects: Problems, lease: Lease, result: ReimportResult,
                *, file_done: bool) -> Marker:
        """Write ``batch`` as the next revision, then move the marker past it."""
        number = max(marker.checked_through, marker.last_revision or 0) + 1
        meta = RevisionMeta(
            number=number, events=batch.events, min_t=batch.min_t, max_t=batch.max_t,
            written_at=self._now(), source=REIMPORT_SOURCE, source_key=checked.name,
            source_etag=checked.file_id, record_start=batch.line_start,
            record_end=scanner.line_number, byte_start=batch.byte_start,
            byte_end=scanner.position_bytes, line_end=scanner.line_number,
            rejected=rejects.count - batch.rejected_before, file_done=file_done,
            file_first_revision=marker.first_revision or number)
        lease.check()
        try:
            self.store.write(site, meta, batch.body)
        except RevisionExists:
            raise ReimportConflict(
                f"revision {number} of site {site} was written by another writer during the "
                f"reimport of {checked.name}; nothing was overwritten, and running the same "
                f"command again continues after line {marker.line_end}") from None
        self.tail_cache.put(site, number)
        if self.metrics is not None:
            self.metrics.revisions_written.labels(site, REIMPORT_SOURCE).inc()
        logger.info("site=%s file=%s revision=%d events=%d lines=%d..%d", site, checked.name,
                    number, batch.events, batch.line_start, scanner.line_number)
        marker = marker.after(meta, self._now())
        self.markers.write(site, marker)
        result.written.append(number)
        result.lines_imported += batch.events
        result.first_revision = marker.first_revision
        result.last_revision = number
        return marker
