"""A site's import picture for ``bucketbridge status``: the same cursor the scan resumes from,
the files waiting, the current file and record, and the last scan's report."""

from __future__ import annotations

from typing import Any

from shared.errors import BucketbridgeError
from shared.imports.cursor import Revisions, progress
from shared.imports.sitefiles import matching_files
from shared.store.jobstatus import StatusStore
from shared.store.s3 import S3
from shared.store.sites import SiteConfig


def import_status(revisions: Revisions, statuses: StatusStore, site: SiteConfig,
                  s3: S3) -> dict[str, Any]:
    """``s3`` reaches the site's bucket (its role, or the fleet's access)."""
    cursor = revisions.cursor(site.site_id)
    last = statuses.read(site.site_id, "scan")
    out: dict[str, Any] = {
        "revisions": cursor.latest,
        "last_scan_at": last.finished_at, "last_scan_outcome": last.outcome,
        "last_error": last.last_error, "last_error_at": last.last_error_at,
        "current_file": None, "next_record": None,
        "backlog_files": None, "backlog_bytes": None, "bucket_error": None,
    }
    try:
        files = matching_files(s3, site)
    except BucketbridgeError as exc:
        out["bucket_error"] = str(exc)
        return out
    out["backlog_files"] = len(files)
    out["backlog_bytes"] = sum(f.size_bytes for f in files)
    now = progress(cursor, files)
    if now is not None:
        out["current_file"] = now.key
        out["next_record"] = now.next_record
    return out
