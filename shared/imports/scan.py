"""One scan of a site's recurring import: find its files, resume, import, move finished files.

The cursor (``shared.imports.cursor``) is the newest CSV revision's metadata: which file (and
which version of it) it came from, how far it reached, and whether it ended that file.  From it
a scan recovers every interrupted state — a file half imported, a file finished but not yet
moved, a file that changed or disappeared in between — without any state outside the store
bucket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from shared.clock import Clock
from shared.errors import BadFile
from shared.fleet.hints import RevisionTailCache
from shared.fleet.idlememo import IdleMemo
from shared.formats.csvrecords import ReadLimits
from shared.formats.importkeys import is_gzip_key
from shared.formats.times import parse_iso_utc
from shared.imports.cursor import CSV_SOURCE, Cursor, Recovery, Revisions, recover
from shared.imports.fastrows import use_fast
from shared.imports.filerun import FileImport, FileOutcome, FilePosition
from shared.imports.finish import Finisher
from shared.imports.sitefiles import matching_files
from shared.metrics import Metrics
from shared.store.rejectreports import RejectReports
from shared.store.revisions import EventStore, FileEnd, RevisionMeta
from shared.store.revisionwriter import Limits, RevisionWriter
from shared.store.s3 import S3, ObjectInfo
from shared.store.seekpoints import SeekPoints
from shared.store.sites import SiteConfig

logger = logging.getLogger(__name__)


class ScanOutcome(StrEnum):
    DONE = "done"  # nothing left to import
    BUDGET = "budget"  # stopped at the budget with work left
    INTERRUPTED = "interrupted"  # stopped early when asked to (shutdown, lease lost)


@dataclass
class ScanResult:
    outcome: ScanOutcome = ScanOutcome.DONE
    files_completed: list[str] = field(default_factory=list)
    files_failed: list[tuple[str, str]] = field(default_factory=list)
    rows_imported: int = 0
    revisions: int = 0
    current_file: str | None = None
    next_record: int | None = None
    backlog_files: int = 0
    backlog_bytes: int = 0

    @property
    def last_error(self) -> str | None:
        if not self.files_failed:
            return None
        key, reason = self.files_failed[-1]
        return f"{key}: {reason}"


class Importer:
    def __init__(self, store: EventStore, reports: RejectReports, hints: RevisionTailCache,
                 clock: Clock, metrics: Metrics, limits: Limits | None = None,
                 read_limits: ReadLimits | None = None, csv_engine: str = "auto") -> None:
        self.fast = use_fast(csv_engine)
        self.seek_points = SeekPoints(store.s3, store.bucket)
        self.store = store
        self.reports = reports
        self.revisions = Revisions(store, hints)
        self.hints = hints
        self.idle = IdleMemo.beside(hints)
        self.clock = clock
        self.metrics = metrics
        self.limits = limits or Limits()
        self.read_limits = read_limits or ReadLimits()

    def scan(self, site: SiteConfig, s3: S3, budget_s: float,
             should_stop: Callable[[], bool] = lambda: False,
             on_revision: Callable[[int], None] = lambda _n: None) -> ScanResult:
        """Import as much as fits in ``budget_s``; every record read is committed on return.

        ``on_revision(n)`` is called after each revision is written."""
        deadline = self.clock.monotonic_s() + budget_s
        sid = site.site_id
        writer = RevisionWriter(self.store, self.reports, sid, CSV_SOURCE, self.clock,
                                self.metrics, on_revision)
        finisher = Finisher(s3, site.import_bucket, writer, self.reports, self.clock,
                            self.metrics)
        files = matching_files(s3, site)
        if not files and self.idle.scan_settled(sid):
            return ScanResult()  # no file, and nothing of an earlier run left to finish
        if files:
            self.idle.unsettle_scan(sid)  # before anything is written
        cursor = self.revisions.cursor(sid)
        latest, resume = self._recover(cursor, files, finisher)
        result = ScanResult()
        for info in files:
            if self.clock.monotonic_s() >= deadline or should_stop():
                result.outcome = self._stopped(deadline)
                break
            pos = resume if resume is not None and resume.key == info.key else FilePosition(
                key=info.key, etag=info.etag, gzipped=is_gzip_key(info.key))
            runner = FileImport(s3, site.import_bucket, writer, self.metrics, self.limits,
                                self.read_limits, self.fast, self.seek_points)
            try:
                out = runner.run(pos, latest, deadline, should_stop)
            except BadFile as exc:
                # The run may have committed revisions of the file before it broke.
                now = self.revisions.cursor(sid)
                latest = finisher.fail(info, exc.reason, _partial(now, info), now.latest)
                continue
            result.revisions += out.last_revision - latest
            result.rows_imported += out.rows_imported
            latest = out.last_revision
            self.hints.put(sid, latest)
            if not out.done:
                result.outcome = self._stopped(deadline)
                result.current_file = info.key
                result.next_record = out.position.next_record if out.position else pos.next_record
                break
            # A file imported whole by this run without a bad row has no report to gather.
            clean = pos.first_revision is None and out.rows_rejected == 0
            finisher.complete(info, out.first_revision, latest, self._finished_at(out),
                              no_bad_rows=clean)
        result.files_completed = finisher.finished.completed
        result.files_failed = finisher.finished.failed
        handled = set(result.files_completed) | {k for k, _ in result.files_failed}
        pending = [f for f in files if f.key not in handled]
        result.backlog_files = len(pending)
        result.backlog_bytes = sum(f.size_bytes for f in pending)
        if result.outcome is ScanOutcome.BUDGET:
            self.metrics.budget_exhausted.labels("scan").inc()
        elif result.outcome is ScanOutcome.DONE and not pending:
            self.idle.settle_scan(sid)
        return result

    def _stopped(self, deadline_mono_s: float) -> ScanOutcome:
        """Why a run stopped with work left: its budget ran out, or it was asked to stop."""
        if self.clock.monotonic_s() >= deadline_mono_s:
            return ScanOutcome.BUDGET
        return ScanOutcome.INTERRUPTED

    def _recover(self, cursor: Cursor, files: list[ObjectInfo], finisher: Finisher,
                 ) -> tuple[int, FilePosition | None]:
        """Finish what the last run left (see ``recover``); returns the highest revision
        number after, and where to resume the file moved to the front of ``files``."""
        found = recover(cursor, files)
        latest, meta, current = cursor.latest, cursor.meta, found.file
        match found.recovery:
            case Recovery.RESUME if meta is not None and current is not None:
                files.remove(current)
                files.insert(0, current)
                return latest, FilePosition.after(meta, is_gzip_key(current.key))
            case Recovery.CHANGED if meta is not None and current is not None:
                files.remove(current)
                latest = finisher.fail(
                    current, f"file changed while it was being imported (records "
                    f"1..{meta.record_end} of the earlier version were imported, up to "
                    f"revision {meta.number})", meta, latest)
            case Recovery.VANISHED if meta is not None:
                latest = finisher.vanished(meta, latest)
            case Recovery.UNMOVED if meta is not None and current is not None:
                files.remove(current)
                if meta.file_end is FileEnd.FAILED:
                    finisher.fail_again(current, meta)
                else:  # finished, but the process died before the move
                    finisher.complete(current, meta.file_first_revision, meta.number,
                                      parse_iso_utc(meta.written_at))
        return latest, None

    def _finished_at(self, out: FileOutcome) -> float:
        """When the file's last revision was written (so a move redone after a crash goes to
        the same day's folder); now, for a file that made no revision."""
        return parse_iso_utc(out.ended_at) if out.ended_at else self.clock.now_s()


def _partial(cursor: Cursor, info: ObjectInfo) -> RevisionMeta | None:
    """The cursor, when it is an unfinished revision of this very version of ``info``."""
    meta = cursor.meta
    if meta is not None and meta.source_key == info.key and meta.source_etag == info.etag \
            and not meta.ends_file:
        return meta
    return None
