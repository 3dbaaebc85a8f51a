"""Importing one CSV file, from a resume position, into revisions: the conversion hot path.

Rows are streamed and converted in memory-bounded batches; each batch becomes one revision
(``RevisionWriter``), created with a conditional write that is also the commit of the file
position it reached.  Nothing is written per row: one PUT per revision, plus one for its bad-row
report when it has one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO

import orjson

from shared.errors import BadFile, ObjectMissing, PreconditionFailed
from shared.formats.csvrecords import (
    HEADER_MAX_BYTES,
    ReadLimits,
    ReadPaused,
    RecordReader,
    read_header,
    skip_to,
)
from shared.formats.csvrows import Columns, RowRejected, parse_header, row_to_line
from shared.formats.rejects import REJECT_CONTENT_CHARS, Reject
from shared.formats.streams import open_stream
from shared.imports.fastrows import FastRows
from shared.imports.gzipresume import GzipResume
from shared.metrics import Metrics
from shared.store.revisions import FileEnd, RevisionMeta
from shared.store.revisionwriter import Batch, Limits, RevisionWriter, SourceRange
from shared.store.s3 import S3, ObjectStream
from shared.store.seekpoints import SeekPoints

logger = logging.getLogger(__name__)

# The deadline and the stop request are looked at this often (and whenever a batch is full),
# and by the reader every CHECK_EVERY_BYTES it reads, blank lines and over-long lines included.
_CHECK_EVERY_RECORDS = 2048


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


@dataclass
class FileOutcome:
    done: bool  # reached the end of the file (its last revision says so)
    last_revision: int  # the site's highest revision number after this run
    first_revision: int | None  # the file's first revision (None: it has none)
    rows_imported: int = 0
    rows_rejected: int = 0  # bad rows in this run's revisions
    position: FilePosition | None = None  # after the newest revision of this run
    ended_at: str | None = None  # when the revision that ended the file was written


class FileImport:
    """Imports one file of one site from a position until its end, the deadline, or a stop."""

    def __init__(self, s3: S3, bucket: str, writer: RevisionWriter, metrics: Metrics,
                 limits: Limits | None = None, read_limits: ReadLimits | None = None,
                 fast: bool = False, seek_points: SeekPoints | None = None) -> None:
        """``fast``: convert plain records with ``shared.imports.fastrows`` (same output);
        ``seek_points``: resume gzip files near their cursor (``shared.imports.gzipresume``)."""
        self.fast = fast
        self.seek_points = seek_points
        self.gzip: GzipResume | None = None
        self.s3 = s3
        self.bucket = bucket
        self.writer = writer
        self.site = writer.site
        self.metrics = metrics
        self.limits = limits or Limits()
        self.read_limits = read_limits or ReadLimits()

    def _open(self, pos: FilePosition, streams: ExitStack,
              over_budget: Callable[[], bool]) -> tuple[Columns, RecordReader]:
        """The header's columns and a reader positioned at ``pos``; every stream opened is
        closed by ``streams``, also when the run stops before the end of the file."""

        def open_at(start_byte: int = 0, end_byte: int | None = None) -> ObjectStream:
            return self.s3.open(self.bucket, pos.key, if_match=pos.etag,
                                start_byte=start_byte, end_byte=end_byte)

        def lines(start_byte: int = 0, end_byte: int | None = None) -> IO[bytes]:
            tap = self.gzip.finder.feed if self.gzip is not None else None
            return streams.enter_context(open_stream(open_at(start_byte, end_byte),
                                                     gzipped=pos.gzipped, stored_tap=tap)).file

        try:
            if pos.byte_start == 0:
                reader = RecordReader(lines(), limits=self.read_limits, over_budget=over_budget)
                return parse_header(read_header(reader).cells or []), reader
            resumed = None
            if self.gzip is not None and (point := self.gzip.saved(pos.byte_start)):
                with open_stream(open_at(), gzipped=True) as head:
                    header = read_header(RecordReader(head.file, limits=self.read_limits))
                    columns = parse_header(header.cells or [])
                resumed = self.gzip.resume(point, pos.byte_start, open_at, streams)
            if resumed is not None:
                file = resumed
            elif pos.gzipped:
                head_file = lines()
                header = read_header(RecordReader(head_file, limits=self.read_limits))
                columns = parse_header(header.cells or [])
                skip_to(head_file, pos.byte_start - header.end_byte)
                file = head_file
            else:
                head_file = lines(end_byte=HEADER_MAX_BYTES)
                header = read_header(RecordReader(head_file, limits=self.read_limits))
                columns = parse_header(header.cells or [])
                file = lines(start_byte=pos.byte_start)
            reader = RecordReader(file, start_byte=pos.byte_start, start_line=pos.next_line,
                                  start_record=pos.next_record, limits=self.read_limits,
                                  over_budget=over_budget)
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
        with every record read committed (rows and bad rows alike).  Raises ``BadFile`` if the
        file is unusable and ``RevisionExists`` if another writer got ahead (the caller must
        stop).
        """
        def over_budget() -> bool:
            return self.writer.clock.monotonic_s() >= deadline_mono_s or should_stop()

        self.gzip = (GzipResume(self.seek_points, self.site, pos.key, pos.etag)
                     if pos.gzipped and self.seek_points is not None else None)
        with ExitStack() as streams:
            columns, reader = self._open(pos, streams, over_budget)
            try:
                return self._run(pos, columns, reader, last_revision, deadline_mono_s,
                                 should_stop)
            finally:
                self.metrics.bytes_read.inc(
                    max(0, reader.position_bytes - pos.byte_start))

    def _run(self, pos: FilePosition, columns: Columns, reader: RecordReader,
             last_revision: int, deadline_mono_s: float,
             should_stop: Callable[[], bool]) -> FileOutcome:
        outcome = FileOutcome(done=False, last_revision=last_revision,
                              first_revision=pos.first_revision)
        batch = Batch(record_start=pos.next_record, byte_start=pos.byte_start)
        dumps = orjson.dumps
        limits = self.limits
        since_check = 0
        read = reader.read
        monotonic_s = self.writer.clock.monotonic_s
        import_time_s = int(self.writer.clock.now_s())  # the _t of alias rows without one
        fast = FastRows.for_columns(columns) if self.fast else None
        while True:
            if fast is not None:
                # Plain records up to (not including) the next one this loop must see itself.
                since_check += fast.take(reader, batch, limits,
                                         _CHECK_EVERY_RECORDS - 1 - since_check)
            try:
                cells = read()
            except StopIteration:
                break
            except ReadPaused:  # the budget ran out within blank or over-long lines
                if not batch.empty or reader.position_bytes > batch.byte_start:
                    self._commit(batch, pos, reader, outcome, FileEnd.OPEN)
                return outcome
            if cells is None:
                batch.rejects.append(Reject(reader.number, reader.line,
                                            reader.error_code or "malformed",
                                            reader.error or "unreadable", ""))
            else:
                try:
                    line = row_to_line(cells, columns, import_time_s=import_time_s)
                except RowRejected as rej:
                    batch.rejects.append(Reject(
                        reader.number, reader.line, rej.code, rej.reason,
                        ",".join(cells)[:REJECT_CONTENT_CHARS]))
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
            since_check += 1
            full = batch.full(limits)
            if not full and since_check < _CHECK_EVERY_RECORDS:
                continue
            since_check = 0
            stop = monotonic_s() >= deadline_mono_s or should_stop()
            if full or (stop and not batch.empty):
                self._commit(batch, pos, reader, outcome, FileEnd.OPEN)
                batch = Batch(record_start=reader.number + 1, byte_start=reader.position_bytes)
            if stop:
                return outcome
        outcome.done = True
        if not batch.empty or (outcome.position or pos).revision is not None:
            # The file's last revision says it is done: with what was left, or without events
            # when the file ended just after a commit.
            self._commit(batch, pos, reader, outcome, FileEnd.DONE)
        return outcome

    def _commit(self, batch: Batch, pos: FilePosition, reader: RecordReader,
                outcome: FileOutcome, file_end: FileEnd) -> None:
        meta = self.writer.commit(
            outcome.last_revision + 1, batch,
            SourceRange(pos.key, pos.etag, reader.number, reader.position_bytes,
                        reader.end_line),
            file_end=file_end, first_revision=outcome.first_revision)
        outcome.last_revision = meta.number
        outcome.first_revision = meta.file_first_revision
        outcome.rows_imported += batch.events
        outcome.rows_rejected += meta.rejected
        outcome.position = FilePosition.after(meta, pos.gzipped)
        if self.gzip is not None and not meta.ends_file:
            self.gzip.checkpoint(reader.position_bytes)
        if meta.ends_file:
            outcome.ended_at = meta.written_at
