"""One scan of a site's recurring import: find its files, resume, import, move finished files.

The cursor is the newest revision's metadata: which file (and which version of it) it came from,
how far it reached, and whether that file was finished.  From it a scan recovers every
interrupted state — a file half imported, a file finished but not yet moved, a file that
changed or disappeared in between — without any state outside the store bucket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.clock import Clock
from shared.errors import BadFile, ObjectMissing, PreconditionFailed
from shared.fleet.hints import RevisionTailCache
from shared.formats.importkeys import (
    completed_key,
    disambiguated,
    failed_key,
    failure_report_key,
    is_gzip_key,
    row_report_key,
)
from shared.formats.times import iso_utc, parse_iso_utc
from shared.imports.filerun import FileImport, FilePosition, Limits, Reject, format_rejects
from shared.metrics import Metrics
from shared.store.rejectreports import CLOSED, FileEnd, FileRecords
from shared.store.revisions import CSV_SOURCE, EventStore, RevisionMeta
from shared.store.s3 import S3, ObjectInfo
from shared.store.sites import SiteConfig

logger = logging.getLogger(__name__)


@dataclass
class ScanResult:
    outcome: str = "done"  # "done": nothing left; "budget": stopped with work left
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


def matching_files(s3: S3, site: SiteConfig) -> list[ObjectInfo]:
    """The site's import files in the customer bucket, in byte order of their keys."""
    pattern = site.pattern
    found = [i for i in s3.list(site.import_bucket, pattern.list_prefix) if pattern.matches(i.key)]
    return sorted(found, key=lambda i: i.key.encode("utf-8"))


SOURCE_ETAG_META = "bb-source-etag"


def _free_destination(s3: S3, bucket: str, dest: str, etag: str) -> str:
    """``dest``, unless a different file already sits there (our own earlier copy of this very
    version, from a run that died before deleting the original, does not count)."""
    existing = s3.head(bucket, dest)
    if existing is None or existing.metadata.get(SOURCE_ETAG_META) == etag:
        return dest
    return disambiguated(dest, etag)


class Importer:
    def __init__(self, store: EventStore, tail_cache: RevisionTailCache, clock: Clock,
                 metrics: Metrics, limits: Limits | None = None) -> None:
        self.store = store
        self.records = FileRecords(store)
        self.tail_cache = tail_cache
        self.clock = clock
        self.metrics = metrics
        self.limits = limits or Limits()

    def latest(self, site: str) -> tuple[int, tuple[RevisionMeta, ObjectInfo] | None]:
        """The highest revision number, and the cursor: the newest revision that came from the
        recurring CSV import.  Revisions from other sources (a reimport of export files) may
        sit above it; what was learnt about them is cached, and since revisions never change,
        each one is looked at once even after a reimport of thousands."""
        number = self.store.latest_number(site, hint=self.tail_cache.get(site))
        if number:
            self.tail_cache.put(site, number)
        known = self.tail_cache.get_cursor(site)
        floor = known[1] if known and known[1] <= number else 0
        head = self._newest_csv(site, number, floor)
        if head is None and known and floor and known[0]:
            head = self.store.head(site, known[0])
            if head is None or head[0].source != CSV_SOURCE:
                head = self._newest_csv(site, floor, 0)  # the hint does not hold: look at all
        if number:
            self.tail_cache.put_cursor(site, head[0].number if head else 0, number)
        return number, head

    def _newest_csv(self, site: str, top: int, floor: int
                    ) -> tuple[RevisionMeta, ObjectInfo] | None:
        """The newest CSV revision numbered in ``floor+1..top``."""
        for candidate in range(top, floor, -1):
            head = self.store.head(site, candidate)
            if head is not None and head[0].source == CSV_SOURCE:
                return head
        return None

    def scan(self, site: SiteConfig, s3: S3, budget_s: float,
             should_stop: Callable[[], bool] = lambda: False,
             on_revision: Callable[[int], None] = lambda _n: None) -> ScanResult:
        """Import as much as fits in ``budget_s``; every imported row is committed on return.

        ``on_revision(n)`` is called after each revision is written."""
        deadline = self.clock.monotonic_s() + budget_s
        sid = site.site_id
        files = matching_files(s3, site)
        result = ScanResult()
        latest, cursor = self.latest(sid)
        resume = self._recover(site, s3, files, cursor, result) if cursor else None

        for info in files:
            if self.clock.monotonic_s() >= deadline or should_stop():
                result.outcome = "budget"
                break
            pos = resume if resume is not None and resume.key == info.key else FilePosition(
                key=info.key, etag=info.etag, gzipped=is_gzip_key(info.key))
            runner = FileImport(s3, site.import_bucket, self.store, sid, self.clock,
                                self.metrics, self.limits, on_revision)
            try:
                out = runner.run(pos, latest, deadline, should_stop)
            except BadFile as exc:
                latest, cur = self.latest(sid)  # the run may have committed revisions first
                partial = cur[0] if cur and cur[0].source_key == info.key and not cur[0].file_done \
                    and cur[0].source_etag == info.etag else None
                self._fail(site, s3, info, exc.reason, result, partial)
                continue
            result.revisions += out.last_revision - latest
            result.rows_imported += out.rows_imported
            latest = out.last_revision
            self.tail_cache.put(sid, latest)
            if not out.done:
                result.outcome = "budget"
                result.current_file = info.key
                result.next_record = out.position.next_record if out.position else pos.next_record
                break
            # out.first_revision is None when the file produced no revision at all
            self._complete(site, s3, info, out.first_revision, latest, out.rejects_uncommitted,
                           self.clock.now_s(), result)
        handled = set(result.files_completed) | {k for k, _ in result.files_failed}
        pending = [f for f in files if f.key not in handled]
        result.backlog_files = len(pending)
        result.backlog_bytes = sum(f.size_bytes for f in pending)
        self.metrics.backlog_files.labels(sid).set(result.backlog_files)
        self.metrics.backlog_bytes.labels(sid).set(result.backlog_bytes)
        if result.outcome == "budget":
            self.metrics.budget_exhausted.labels("scan", sid).inc()
        return result

    def _recover(self, site: SiteConfig, s3: S3, files: list[ObjectInfo],
                 cursor: tuple[RevisionMeta, ObjectInfo], result: ScanResult,
                 ) -> FilePosition | None:
        """Finish what the last run left: a file half imported (returned, to resume first,
        and moved to the front of ``files``), finished but not moved, or changed or removed
        before its end."""
        meta, rev_info = cursor
        sid = site.site_id
        current = next((f for f in files if f.key == meta.source_key), None)
        done_at = meta.written_at if meta.file_done else None
        if done_at is None:
            end = self.records.end_of(sid, meta.number)
            if end is not None and end.how == CLOSED:
                return None  # that file was closed: a key of the same name is a new file
            done_at = end.at if end is not None else None
        if done_at is None:
            if current is None:
                self._note_removed(site, s3, meta, result)
            elif current.etag != meta.source_etag:
                self._fail(site, s3, current, "file changed while it was being imported "
                           f"(records 1..{meta.record_end} of the earlier version were "
                           f"imported, up to revision {meta.number})", result, meta)
                files.remove(current)
            else:
                files.remove(current)
                files.insert(0, current)
                return FilePosition.after(meta, is_gzip_key(current.key))
        elif current is not None and current.etag == meta.source_etag and (
                current.last_modified is None or rev_info.last_modified is None
                or current.last_modified <= rev_info.last_modified):
            # Finished but not moved: the process died between commit and move.
            self._complete(site, s3, current, meta.file_first_revision, meta.number, [],
                           parse_iso_utc(done_at), result)
            files.remove(current)
        return None

    def _complete(self, site: SiteConfig, s3: S3, info: ObjectInfo, first_revision: int | None,
                  last_revision: int, tail_rejects: list[Reject], completed_at_s: float,
                  result: ScanResult) -> None:
        """Write the bad-row report, then move the file to ``completed_imports/``."""
        bucket = site.import_bucket
        dest = _free_destination(s3, bucket, completed_key(info.key, completed_at_s), info.etag)
        stored = b"".join(self.records.read_rejects(site.site_id, first_revision,
                                                    last_revision)) \
            if first_revision is not None else b""
        tail = format_rejects(tail_rejects, with_header=False)
        if stored or tail:
            header = format_rejects([], with_header=True)
            s3.put(bucket, row_report_key(dest), header + stored + tail, content_type="text/csv")
        else:
            s3.delete(bucket, row_report_key(dest))  # never leave a stale report beside it
        try:
            s3.copy(bucket, info.key, bucket, dest, if_match=info.etag,
                    metadata={SOURCE_ETAG_META: info.etag})
        except PreconditionFailed:
            logger.warning("site=%s file=%s changed after its import; left in place",
                           site.site_id, info.key)
            return
        except ObjectMissing:
            logger.warning("site=%s file=%s vanished before it was moved", site.site_id, info.key)
            return
        s3.delete(bucket, info.key)
        logger.info("site=%s file=%s completed -> %s", site.site_id, info.key, dest)
        self.metrics.files_completed.labels(site.site_id).inc()
        result.files_completed.append(info.key)

    def _fail(self, site: SiteConfig, s3: S3, info: ObjectInfo, reason: str, result: ScanResult,
              partial: RevisionMeta | None) -> None:
        """Move an unusable file to ``failed_imports/`` with a readable report beside it."""
        bucket = site.import_bucket
        now = self.clock.now_s()
        dest = failed_key(info.key, now)
        imported = (f"Records 1..{partial.record_end} were imported (revisions "
                    f"{partial.file_first_revision}..{partial.number}) before the failure.\n"
                    if partial else "No record of this file was imported.\n")
        report = (f"bucketbridge could not import s3://{bucket}/{info.key}\n"
                  f"Site: {site.site_id}\nWhen: {iso_utc(now)}\nReason: {reason}\n{imported}"
                  f"The file was moved to s3://{bucket}/{dest}\n")
        logger.error("site=%s file=%s failed: %s", site.site_id, info.key, reason)
        try:
            s3.copy(bucket, info.key, bucket, dest)
            s3.delete(bucket, info.key)
        except ObjectMissing:
            report = report.replace(f"The file was moved to s3://{bucket}/{dest}\n",
                                    "The file was deleted before it could be moved.\n")
        s3.put(bucket, failure_report_key(dest), report.encode("utf-8"), content_type="text/plain")
        if partial is not None:
            self.records.mark_end(site.site_id, partial.number,
                                  FileEnd(CLOSED, iso_utc(now), reason))
        self.metrics.files_failed.labels(site.site_id).inc()
        result.files_failed.append((info.key, reason))

    def _note_removed(self, site: SiteConfig, s3: S3, meta: RevisionMeta,
                      result: ScanResult) -> None:
        """The file being imported disappeared before its end: report it once, then move on."""
        reason = (f"file was deleted before its import finished (records 1..{meta.record_end} "
                  f"were imported, up to revision {meta.number})")
        now = self.clock.now_s()
        dest = failed_key(meta.source_key, now)
        report = (f"bucketbridge could not finish importing s3://{site.import_bucket}/"
                  f"{meta.source_key}\nSite: {site.site_id}\nWhen: {iso_utc(now)}\n"
                  f"Reason: {reason}\n")
        logger.error("site=%s file=%s %s", site.site_id, meta.source_key, reason)
        s3.put(site.import_bucket, failure_report_key(dest), report.encode("utf-8"),
               content_type="text/plain")
        self.records.mark_end(site.site_id, meta.number, FileEnd(CLOSED, iso_utc(now), reason))
        self.metrics.files_failed.labels(site.site_id).inc()
        result.files_failed.append((meta.source_key, reason))
