"""Finishing an import file: moved to ``completed_imports/`` with its bad-row report, or to
``failed_imports/`` with a readable report of why.

Every step is ordered so that a run killed between any two of them is finished by the next
scan, with nothing lost and nothing reported twice in different words:

- completed: the file's last revision says ``done`` (written by the import), then
  ``<name>.errors.csv`` is written, the file copied, the original deleted;
- failed after some of it was imported: a revision without events says ``failed`` with the
  reason and the version given up, then ``<name>.error.txt`` is written, the file copied, the
  original deleted;
- failed before any of it was imported: the report, the copy, the delete (the next scan fails
  the same file again, to the same place: the day's folder of the report already written,
  also when the crash was before midnight and the next scan after it);
- deleted before its end: the report, then the ``failed`` revision.

Reports and destinations are named from the revision that ended the file, so a step redone
after a crash writes the same report to the same place.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from shared.clock import Clock
from shared.errors import ObjectMissing, PreconditionFailed
from shared.formats.importkeys import (
    completed_key,
    failed_key,
    failure_report_key,
    row_report_key,
)
from shared.formats.rejects import format_rejects
from shared.formats.times import iso_utc, parse_iso_utc
from shared.imports.sitefiles import Upload, free_destination, reported_destination
from shared.metrics import Metrics
from shared.store.rejectreports import RejectReports
from shared.store.revisions import FileEnd, RevisionMeta
from shared.store.revisionwriter import Batch, RevisionWriter, SourceRange
from shared.store.s3 import S3, ObjectInfo

logger = logging.getLogger(__name__)

_DAY_S = 86400.0
REPORT_PUT_BYTES = 8 * 1024 * 1024  # a bad-row report larger than this is streamed


@dataclass
class Finished:
    """What a scan finished: files completed, and files failed with their reasons."""

    completed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


class Chunks:
    """A byte stream made of ``parts`` read one after another, for a streamed upload."""

    def __init__(self, parts: Iterator[bytes | bytearray]) -> None:
        self._parts = parts
        self._current: bytes | bytearray = b""
        self._at = 0  # bytes of the current part already read

    def read(self, size_bytes: int = -1, /) -> bytes:
        pieces: list[memoryview] = []  # views of the parts: the bytes are copied once, joined
        wanted = size_bytes
        while size_bytes < 0 or wanted > 0:
            if self._at >= len(self._current):
                self._current, self._at = next(self._parts, b""), 0
                if not self._current:
                    break
            end = len(self._current) if size_bytes < 0 else min(len(self._current),
                                                                 self._at + wanted)
            pieces.append(memoryview(self._current)[self._at:end])
            wanted -= end - self._at
            self._at = end
        return b"".join(pieces)

    def close(self) -> None:
        return None


class Finisher:
    """Moves one site's finished files, in the customer's bucket reached through ``s3``."""

    def __init__(self, s3: S3, bucket: str, writer: RevisionWriter, reports: RejectReports,
                 clock: Clock, metrics: Metrics) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.writer = writer
        self.site = writer.site
        self.reports = reports
        self.clock = clock
        self.metrics = metrics
        self.finished = Finished()

    # -- completed ----------------------------------------------------------------------------

    def complete(self, info: ObjectInfo, first_revision: int | None, last_revision: int,
                 completed_at_s: float, *, no_bad_rows: bool = False) -> None:
        """Write the bad-row report of revisions ``first..last``, then move the file to
        ``completed_imports/`` (the day it was completed).  ``no_bad_rows``: the caller saw
        every revision of the file, none with a bad row (the stored reports are not listed)."""
        upload = Upload.of(info)
        found = free_destination(self.s3, self.bucket, completed_key(info.key, completed_at_s),
                                 upload, row_report_key)
        dest = found.key
        # One revision's report at a time: up to REPORT_PUT_BYTES it is one PUT, beyond it is
        # streamed (multipart), so millions of bad rows never sit in memory.
        stored = (part for part in self.reports.read(self.site, first_revision, last_revision)
                  if part) if first_revision is not None and not no_bad_rows else iter(())
        head = bytearray(format_rejects([], with_header=True))
        header_bytes = len(head)
        for part in stored:
            head += part
            if len(head) > REPORT_PUT_BYTES:
                break
        if len(head) > REPORT_PUT_BYTES:
            chunks = Chunks(itertools.chain((head,), stored))
            del head  # held by the stream only until it is read
            self.s3.upload(self.bucket, row_report_key(dest), chunks, content_type="text/csv",
                           metadata=upload.metadata, low_memory=True)
        elif len(head) > header_bytes:
            self.s3.put(self.bucket, row_report_key(dest), bytes(head), metadata=upload.metadata,
                        content_type="text/csv")
        elif found.has_report:
            self.s3.delete(self.bucket, row_report_key(dest))  # never a stale report beside it
        try:
            # The size comes with the ETag it is matched on: one COPY request, no HEAD first.
            self.s3.copy(self.bucket, info.key, self.bucket, dest, if_match=info.etag,
                         size_bytes=info.size_bytes, metadata=upload.metadata)
        except PreconditionFailed:
            logger.warning("site=%s file=%s changed after its import; left in place",
                           self.site, info.key)
            return
        except ObjectMissing:
            logger.warning("site=%s file=%s vanished before it was moved", self.site, info.key)
            return
        self.s3.delete(self.bucket, info.key)
        logger.info("site=%s file=%s completed -> %s", self.site, info.key, dest)
        self.metrics.files_completed.inc()
        self.finished.completed.append(info.key)

    # -- failed -------------------------------------------------------------------------------

    def fail(self, info: ObjectInfo, reason: str, partial: RevisionMeta | None,
             last_revision: int) -> int:
        """Give up ``info``: ``partial`` is the newest revision of the file when some of it was
        imported.  Returns the site's highest revision number after."""
        if partial is None:
            self._move_failed(info, reason, None, self.clock.now_s())
            return last_revision
        end = self._end_revision(partial, last_revision, info.etag, reason)
        self._move_failed(info, reason, (end, partial.number), parse_iso_utc(end.written_at))
        return end.number

    def fail_again(self, info: ObjectInfo, end: RevisionMeta) -> None:
        """Finish the failure that revision ``end`` recorded: report and move."""
        self._move_failed(info, end.end_reason, (end, end.number - 1),
                          parse_iso_utc(end.written_at))

    def vanished(self, partial: RevisionMeta, last_revision: int) -> int:
        """The file ``partial`` was importing was deleted before its end: report it, then
        record the end.  Returns the site's highest revision number after."""
        reason = (f"file was deleted before its import finished (records "
                  f"1..{partial.record_end} were imported, up to revision {partial.number})")
        now = self.clock.now_s()
        dest = self._unrecorded_failure(partial.source_key, Upload(partial.source_etag), now)
        upload = Upload(partial.source_etag)
        report = (f"bucketbridge could not finish importing s3://{self.bucket}/"
                  f"{partial.source_key}\nSite: {self.site}\nWhen: {iso_utc(now)}\n"
                  f"Reason: {reason}\n")
        logger.error("site=%s file=%s %s", self.site, partial.source_key, reason)
        self.s3.put(self.bucket, failure_report_key(dest), report.encode("utf-8"),
                    metadata=upload.metadata, content_type="text/plain")
        end = self._end_revision(partial, last_revision, partial.source_etag, reason)
        self._failed(partial.source_key, reason)
        return end.number

    def _end_revision(self, partial: RevisionMeta, last_revision: int, etag: str,
                      reason: str) -> RevisionMeta:
        """A revision without events that closes the file's import as failed."""
        return self.writer.commit(
            last_revision + 1,
            Batch(record_start=partial.record_end + 1, byte_start=partial.byte_end),
            SourceRange(partial.source_key, etag, partial.record_end, partial.byte_end,
                        partial.line_end),
            file_end=FileEnd.FAILED, first_revision=partial.file_first_revision,
            end_reason=reason)

    def _move_failed(self, info: ObjectInfo, reason: str,
                     ended: tuple[RevisionMeta, int] | None, failed_at_s: float) -> None:
        """The report first, then the copy and the delete: a kill anywhere leaves the
        report, and the next scan finishes the move.  ``ended``: the revision that recorded
        the failure, and the last revision with the file's rows."""
        upload = Upload.of(info)
        if ended is None:
            dest = self._unrecorded_failure(info.key, upload, failed_at_s)
        else:
            dest = free_destination(self.s3, self.bucket, failed_key(info.key, failed_at_s),
                                    upload, failure_report_key).key
        if ended is None:
            imported = "No record of this file was imported.\n"
        else:
            end, through = ended
            imported = (f"Records 1..{end.record_end} were imported (revisions "
                        f"{end.file_first_revision}..{through}) before the failure.\n")
        report = (f"bucketbridge could not import s3://{self.bucket}/{info.key}\n"
                  f"Site: {self.site}\nWhen: {iso_utc(failed_at_s)}\nReason: {reason}\n"
                  f"{imported}The file was moved to s3://{self.bucket}/{dest}\n")
        logger.error("site=%s file=%s failed: %s", self.site, info.key, reason)
        self.s3.put(self.bucket, failure_report_key(dest), report.encode("utf-8"),
                    metadata=upload.metadata, content_type="text/plain")
        try:
            self.s3.copy(self.bucket, info.key, self.bucket, dest, metadata=upload.metadata)
            self.s3.delete(self.bucket, info.key)
        except ObjectMissing:
            self.s3.put(self.bucket, failure_report_key(dest), report.replace(
                f"The file was moved to s3://{self.bucket}/{dest}\n",
                "The file was deleted before it could be moved.\n").encode("utf-8"),
                metadata=upload.metadata, content_type="text/plain")
        self._failed(info.key, reason)

    def _unrecorded_failure(self, key: str, upload: Upload, now_s: float) -> str:
        """Where a failure no revision recorded goes: where a run that died half-way (before
        midnight, perhaps) reported it already, or a free name in today's folder."""
        for day_s in (now_s, now_s - _DAY_S):
            found = reported_destination(self.s3, self.bucket, failed_key(key, day_s), upload,
                                         failure_report_key)
            if found is not None:
                return found
        return free_destination(self.s3, self.bucket, failed_key(key, now_s), upload,
                                failure_report_key).key

    def _failed(self, key: str, reason: str) -> None:
        self.metrics.files_failed.inc()
        self.finished.failed.append((key, reason))
