"""A site's import picture for ``bucketbridge status``: the same cursor the scan resumes from,
the files waiting, the current file with how far it got and how fast, and the last scan's
report (its last success and last error)."""

from __future__ import annotations

from typing import Any

from shared.errors import BucketbridgeError
from shared.formats.importkeys import is_gzip_key
from shared.formats.times import parse_iso_utc
from shared.imports.cursor import Cursor, Revisions, progress
from shared.imports.sitefiles import matching_files
from shared.store.jobstatus import StatusStore
from shared.store.revisions import RevisionMeta
from shared.store.s3 import S3
from shared.store.sites import SiteConfig

# The rate is measured over this many of the file's newest revisions, written this close
# together (older ones belong to an earlier burst of work and would dilute it).
RATE_REVISIONS = 5
RATE_WINDOW_S = 15 * 60


def recent_rate(revisions: Revisions, site: str, newest: RevisionMeta) -> float | None:
    """Bytes per second of the file ``newest`` came from, from its last few revisions'
    positions and times; ``None`` when they are too few to tell."""
    metas = [newest]
    number = newest.number - 1
    while len(metas) < RATE_REVISIONS and number >= newest.file_first_revision and number > 0:
        head = revisions.store.head(site, number)
        number -= 1
        if head is None:
            continue
        meta = head[0]
        if (meta.source_key, meta.source_etag) != (newest.source_key, newest.source_etag):
            break
        metas.append(meta)
    end_s = parse_iso_utc(newest.written_at)
    metas = [m for m in metas if end_s - parse_iso_utc(m.written_at) <= RATE_WINDOW_S]
    oldest = metas[-1]
    seconds = end_s - parse_iso_utc(oldest.written_at)
    if seconds <= 0:
        return None
    return (newest.byte_end - oldest.byte_end) / seconds


def _file_progress(revisions: Revisions, site: str, cursor: Cursor, key: str,
                   size_bytes: int) -> dict[str, Any]:
    meta = cursor.meta
    started = meta is not None and meta.source_key == key and not meta.ends_file
    done_bytes = meta.byte_end if started and meta else 0
    gzipped = is_gzip_key(key)
    out: dict[str, Any] = {
        "size_bytes": size_bytes, "gzipped": gzipped,
        # for a gzip file: bytes of the decompressed stream, not of the object
        "bytes_done": done_bytes, "rows_done": meta.record_end if started and meta else 0,
        "percent": None, "rate_bytes_per_s": None, "eta_s": None,
    }
    if not gzipped and size_bytes:
        out["percent"] = round(100.0 * min(done_bytes, size_bytes) / size_bytes, 1)
    rate = recent_rate(revisions, site, meta) if started and meta else None
    if rate is not None and rate > 0:
        out["rate_bytes_per_s"] = round(rate)
        if not gzipped:
            out["eta_s"] = round(max(0, size_bytes - done_bytes) / rate)
    return out


def import_status(revisions: Revisions, statuses: StatusStore, site: SiteConfig,
                  s3: S3) -> dict[str, Any]:
    """``s3`` reaches the site's bucket (its role, or the fleet's access)."""
    cursor = revisions.cursor(site.site_id)
    last = statuses.read(site.site_id, "scan")
    out: dict[str, Any] = {
        "revisions": cursor.latest,
        "last_scan_at": last.finished_at, "last_scan_outcome": last.outcome,
        "last_success_at": last.last_success_at,
        "last_error": last.last_error, "last_error_at": last.last_error_at,
        "last_error_resolved": last.error_resolved,
        "current_file": None, "next_record": None, "progress": None,
        "backlog_files": None, "backlog_bytes": None, "bucket_error": None,
        "waiting_for_first_file": False,
    }
    try:
        files = matching_files(s3, site)
    except BucketbridgeError as exc:
        out["bucket_error"] = str(exc)
        return out
    out["backlog_files"] = len(files)
    out["backlog_bytes"] = sum(f.size_bytes for f in files)
    out["waiting_for_first_file"] = not files and cursor.meta is None
    now = progress(cursor, files)
    if now is not None:
        out["current_file"] = now.key
        out["next_record"] = now.next_record
        out["progress"] = _file_progress(revisions, site.site_id, cursor, now.key,
                                         now.size_bytes)
    return out
