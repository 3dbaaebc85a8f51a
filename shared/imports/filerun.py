"""Importing one CSV file, from a resume position, into revisions: the conversion hot path.

Rows are streamed and converted in memory-bounded batches; each batch becomes one revision,
created with a conditional write that is also the commit of the file position it reached.
Nothing is written per row: one PUT per revision (plus one for its bad-row report, if any).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO

import orjson

from shared.clock import Clock
from shared.errors import BadFile, ObjectMissing, PreconditionFailed
from shared.formats.csvrecords import MAX_LINE_BYTES, RecordReader, read_header, skip_to
from shared.formats.csvrows import Columns, RowRejected, parse_header, row_to_line
from shared.formats.streams import open_stream
from shared.formats.times import iso_utc
from shared.metrics import Metrics
from shared.store.rejectreports import DONE, FileEnd, FileRecords
from shared.store.revisions import CSV_SOURCE, EventStore, RevisionMeta
from shared.store.s3 import S3

logger = logging.getLogger(__name__)

REJECT_HEADER = ("Record", "Line", "Reason", "Content")
_REJECT_CONTENT_CHARS = 200
_CHECK_EVERY_RECORDS = 2048


@dataclass(frozen=True)
class Limits:
    max_events_per_revision: int = 100_000
    max_revision_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class FilePosition:
    """Where the import of one source file (one version of it: its ETag) stands."""

    key: str
    etag: str
    gzipped: bool
    byte_start: int = 0
    next_record: int = 1
    next_line: int = 1
    first_revision: int | None = None  # the file's first revision, once it has one
    revision: int | None = None  # the file's revision this position comes after

    @classmethod
    def after(cls, meta: RevisionMeta, gzipped: bool) -> FilePosition:
        return cls(key=meta.source_key, etag=meta.source_etag, gzipped=gzipped,
                   byte_start=meta.byte_end, next_record=meta.record_end + 1,
                   next_line=meta.line_end + 1, first_revision=meta.file_first_revision,
                   revision=meta.number)


@dataclass(frozen=True, slots=True)
class Reject:
    record: int
    line: int
    code: str
    reason: str
    content: str


def format_rejects(rejects: list[Reject], with_header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if with_header:
        writer.writerow(REJECT_HEADER)
    for r in rejects:
        writer.writerow((r.record, r.line, r.reason, r.content))
    return out.getvalue().encode("utf-8")


@dataclass
class FileOutcome:
    done: bool  # reached the end of the file
    last_revision: int  # highest revision number after this run
    first_revision: int | None
    rows_imported: int = 0
    rejects_uncommitted: list[Reject] = field(default_factory=list)
    position: FilePosition | None = None


@dataclass
class _Batch:
    record_start: int
    byte_start: int
    body: bytearray = field(default_factory=bytearray)
    events: int = 0
    min_t: int | None = None
    max_t: int | None = None
    rejects: list[Reject] = field(default_factory=list)


class FileImport:
    """Imports one file of one site from a position until its end, the deadline, or a stop."""

    def __init__(self, s3: S3, bucket: str, store: EventStore, site: str, clock: Clock,
                 metrics: Metrics, limits: Limits | None = None,
                 on_revision: Callable[[int], None] = lambda _n: None) -> None:
        self.on_revision = on_revision
        self.records = FileRecords(store)
        self.s3 = s3
        self.bucket = bucket
        self.store = store
        self.site = site
        self.clock = clock
        self.metrics = metrics
        self.limits = limits or Limits()

    def _open(self, pos: FilePosition, streams: ExitStack) -> tuple[Columns, RecordReader]:
        """The header's columns and a reader positioned at ``pos``; every stream opened is
        closed by ``streams``, also when the run stops before the end of the file."""

        def lines(start_byte: int = 0, end_byte: int | None = None) -> IO[bytes]:
            source = self.s3.open(self.bucket, pos.key, if_match=pos.etag,
                                  start_byte=start_byte, end_byte=end_byte)
            return streams.enter_context(open_stream(source, gzipped=pos.gzipped)).file

        try:
            if pos.byte_start == 0:
                reader = RecordReader(lines())
                return parse_header(read_header(reader).cells or []), reader
            head_file = lines(end_byte=None if pos.gzipped else 2 * MAX_LINE_BYTES)
            header = read_header(RecordReader(head_file))
            columns = parse_header(header.cells or [])
            if pos.gzipped:
                skip_to(head_file, pos.byte_start - header.end_byte)
                file = head_file
            else:
                file = lines(start_byte=pos.byte_start)
            reader = RecordReader(file, start_byte=pos.byte_start, start_line=pos.next_line,
                                  start_record=pos.next_record)
            return columns, reader
        except PreconditionFailed:
            raise BadFile("file changed while it was being imported (its ETag is no longer "
                          f"{pos.etag})") from None
        except ObjectMissing:
            raise BadFile("file was deleted while it was being imported") from None

    def run(self, pos: FilePosition, last_revision: int, deadline_mono_s: float,
            should_stop: Callable[[], bool]) -> FileOutcome:
        """Import from ``pos``; revisions are numbered after ``last_revision``.

        Returns at the end of the file or once the deadline passed or ``should_stop()`` is true,
        with every converted row committed.  Raises ``BadFile`` if the file is unusable and
        ``RevisionExists`` if another writer got ahead (the caller must stop).
        """
        with ExitStack() as streams:
            return self._run(pos, last_revision, deadline_mono_s, should_stop, streams)

    def _run(self, pos: FilePosition, last_revision: int, deadline_mono_s: float,
             should_stop: Callable[[], bool], streams: ExitStack) -> FileOutcome:
        columns, reader = self._open(pos, streams)
        outcome = FileOutcome(done=False, last_revision=last_revision,
                              first_revision=pos.first_revision)
        batch = _Batch(record_start=pos.next_record, byte_start=pos.byte_start)
        dumps = orjson.dumps
        max_events = self.limits.max_events_per_revision
        max_bytes = self.limits.max_revision_bytes
        since_check = 0
        read = reader.read
        # A full batch waits for the next record: only then is it known whether the file goes
        # on, so the revision that ends a file always says so.
        full_at: tuple[int, int, int] | None = None
        try:
            while True:
                try:
                    cells = read()
                except StopIteration:
                    break
                if full_at is not None:
                    self._commit(batch, pos, outcome, *full_at, file_done=False)
                    batch = _Batch(record_start=full_at[2] + 1, byte_start=full_at[0])
                    full_at = None
                if cells is None:
                    batch.rejects.append(Reject(reader.number, reader.line,
                                                reader.error_code or "malformed",
                                                reader.error or "unreadable", ""))
                else:
                    try:
                        line = row_to_line(cells, columns)
                    except RowRejected as rej:
                        batch.rejects.append(Reject(
                            reader.number, reader.line, rej.code, rej.reason,
                            ",".join(cells)[:_REJECT_CONTENT_CHARS]))
                    else:
                        batch.body += dumps(line)
                        batch.body += b"\n"
                        batch.events += 1
                        t = line.get("_t")
                        if t is not None:
                            if batch.min_t is None or t < batch.min_t:
                                batch.min_t = t
                            if batch.max_t is None or t > batch.max_t:
                                batch.max_t = t
                full = batch.events >= max_events or len(batch.body) >= max_bytes
                since_check += 1
                if full or since_check >= _CHECK_EVERY_RECORDS:
                    since_check = 0
                    here = (reader.position_bytes, reader.end_line, reader.number)
                    if self.clock.monotonic_s() >= deadline_mono_s or should_stop():
                        if batch.events:
                            self._commit(batch, pos, outcome, *here, file_done=False)
                            batch = _Batch(record_start=here[2] + 1, byte_start=here[0])
                        outcome.rejects_uncommitted = batch.rejects
                        return outcome
                    if full:
                        full_at = here
        finally:
            self.metrics.bytes_read.labels(self.site).inc(
                max(0, reader.position_bytes - pos.byte_start))
        outcome.done = True
        if batch.events:
            self._commit(batch, pos, outcome, reader.position_bytes, reader.end_line,
                         reader.number, file_done=True)
        else:
            outcome.rejects_uncommitted = batch.rejects
            last_of_file = outcome.position.revision if outcome.position else pos.revision
            if last_of_file is not None:
                # No revision can say "done" here (a run stopped on the last record, or only
                # bad records followed it): the marker says it for the file's last revision.
                self.records.mark_end(self.site, last_of_file,
                                      FileEnd(DONE, iso_utc(self.clock.now_s())))
        self._count_rejects(outcome.rejects_uncommitted)
        return outcome

    def _count_rejects(self, rejects: list[Reject]) -> None:
        for r in rejects:
            self.metrics.rows_rejected.labels(self.site, r.code).inc()

    def _commit(self, batch: _Batch, pos: FilePosition, outcome: FileOutcome, end_byte: int,
                end_line: int, end_record: int, *, file_done: bool) -> None:
        number = outcome.last_revision + 1
        first = outcome.first_revision if outcome.first_revision is not None else number
        meta = RevisionMeta(
            number=number, events=batch.events, min_t=batch.min_t, max_t=batch.max_t,
            written_at=iso_utc(self.clock.now_s()), source=CSV_SOURCE, source_key=pos.key,
            source_etag=pos.etag, record_start=batch.record_start, record_end=end_record,
            byte_start=batch.byte_start, byte_end=end_byte, line_end=end_line,
            rejected=len(batch.rejects), file_done=file_done, file_first_revision=first)
        if batch.rejects:
            # Before the revision; keyed by its range, so one that loses is never read.
            self.records.write_rejects(self.site, number, end_record,
                                       format_rejects(batch.rejects, False))
        self.store.write(self.site, meta, batch.body)
        logger.info("site=%s file=%s revision=%d events=%d records=%d..%d", self.site, pos.key,
                    number, batch.events, batch.record_start, end_record)
        self.metrics.revisions_written.labels(self.site, CSV_SOURCE).inc()
        self.metrics.rows_imported.labels(self.site).inc(batch.events)
        self._count_rejects(batch.rejects)
        outcome.last_revision = number
        outcome.first_revision = first
        outcome.rows_imported += batch.events
        outcome.position = FilePosition.after(meta, pos.gzipped)
        self.on_revision(number)
