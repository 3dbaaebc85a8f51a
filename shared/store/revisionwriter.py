"""The one way revisions are written: batches of export lines, committed with their metadata.

Both the recurring CSV import and the reimport of export lines fill a ``Batch`` and hand it to
``RevisionWriter.commit``, which writes the batch's bad-row report (keyed by the revision and
its range, so one that loses never counts), then the revision itself with ``If-None-Match: *``:
the fence against a second writer and the commit of the source range it covers.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.clock import Clock
from shared.formats.rejects import Reject, format_rejects
from shared.formats.times import iso_utc
from shared.metrics import Metrics
from shared.store.rejectreports import RejectReports
from shared.store.revisions import EventStore, FileEnd, RevisionMeta

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """How big a revision gets before it is committed, and how many bad rows are held in
    memory before they are committed (with the revision of the rows read so far)."""

    max_events_per_revision: int = 100_000
    max_revision_bytes: int = 16 * 1024 * 1024
    max_rejects_per_revision: int = 10_000


@dataclass
class Batch:
    """Lines on their way into one revision, and the source records they came from.

    The hot loops append to ``body`` and update the counters directly; ``add`` is the same
    for callers that hold a line at a time."""

    record_start: int  # the first source record (or line) the batch covers
    byte_start: int
    body: bytearray = field(default_factory=bytearray)
    events: int = 0
    min_t: int | None = None
    max_t: int | None = None
    rejects: list[Reject] = field(default_factory=list)

    def add(self, line_json: bytes, t: int | None) -> None:
        self.body += line_json
        self.body += b"\n"
        self.events += 1
        if t is not None:
            if self.min_t is None or t < self.min_t:
                self.min_t = t
            if self.max_t is None or t > self.max_t:
                self.max_t = t

    def full(self, limits: Limits) -> bool:
        return (self.events >= limits.max_events_per_revision
                or len(self.body) >= limits.max_revision_bytes
                or len(self.rejects) >= limits.max_rejects_per_revision)

    @property
    def empty(self) -> bool:
        return not self.events and not self.rejects


@dataclass(frozen=True)
class SourceRange:
    """Where a batch ends in its source: what a revision commits."""

    key: str
    etag: str  # the source's version (an S3 ETag, or the sha256 of a reimported file)
    record_end: int
    byte_end: int
    line_end: int


class RevisionWriter:
    def __init__(self, store: EventStore, reports: RejectReports, site: str, source: str,
                 clock: Clock, metrics: Metrics,
                 on_revision: Callable[[int], None] = lambda _n: None) -> None:
        self.store = store
        self.reports = reports
        self.site = site
        self.source = source
        self.clock = clock
        self.metrics = metrics
        self.on_revision = on_revision

    def commit(self, number: int, batch: Batch, end: SourceRange, *, file_end: FileEnd,
               first_revision: int | None, end_reason: str = "") -> RevisionMeta:
        """Write ``batch`` as revision ``number``; ``RevisionExists`` if another writer got
        there first (the caller must stop: nothing of its batch counts)."""
        meta = RevisionMeta(
            number=number, events=batch.events, min_t=batch.min_t, max_t=batch.max_t,
            written_at=iso_utc(self.clock.now_s()), source=self.source, source_key=end.key,
            source_etag=end.etag, record_start=batch.record_start, record_end=end.record_end,
            byte_start=batch.byte_start, byte_end=end.byte_end, line_end=end.line_end,
            rejected=len(batch.rejects), file_end=file_end,
            file_first_revision=number if first_revision is None else first_revision,
            end_reason=end_reason)
        if batch.rejects:
            self.reports.write(self.site, number, end.record_end,
                               format_rejects(batch.rejects, with_header=False))
        self.store.write(self.site, meta, batch.body)
        logger.info("site=%s file=%s revision=%d events=%d records=%d..%d end=%s", self.site,
                    end.key, number, batch.events, batch.record_start, end.record_end,
                    file_end)
        self.metrics.revisions_written.labels(self.source).inc()
        self.metrics.rows_imported.inc(batch.events)
        for code, count in Counter(r.code for r in batch.rejects).items():
            self.metrics.rows_rejected.labels(code).inc(count)
        self.on_revision(number)
        return meta
