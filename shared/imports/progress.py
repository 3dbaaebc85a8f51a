"""A site's import picture, computed live: backlog, current file and row, revisions, errors."""

from __future__ import annotations

from typing import Any

from shared.errors import BucketbridgeError
from shared.imports.scan import Importer, matching_files
from shared.services import Services
from shared.store.ledger import ExportLedger
from shared.store.rejectreports import FileRecords
from shared.store.sites import SiteConfig


def import_status(svc: Services, site: SiteConfig) -> dict[str, Any]:
    # The same cursor the scan resumes from: the newest revision the CSV import wrote.
    latest, head = Importer(svc.store, svc.tail_cache, svc.clock, svc.metrics).latest(
        site.site_id)
    last = svc.statuses.read(site.site_id, "scan")
    out: dict[str, Any] = {
        "revisions": latest,
        "last_scan_at": last.finished_at, "last_scan_outcome": last.outcome,
        "last_error": last.last_error, "last_error_at": last.last_error_at,
        "current_file": None, "next_record": None,
        "backlog_files": None, "backlog_bytes": None, "bucket_error": None,
    }
    try:
        files = matching_files(svc.access.for_site(site), site)
    except BucketbridgeError as exc:
        out["bucket_error"] = str(exc)
        return out
    out["backlog_files"] = len(files)
    out["backlog_bytes"] = sum(f.size_bytes for f in files)
    if head is not None:
        meta, _ = head
        in_progress = next((f for f in files if f.key == meta.source_key
                            and f.etag == meta.source_etag), None)
        if in_progress and not meta.file_done and \
                FileRecords(svc.store).end_of(site.site_id, meta.number) is None:
            out["current_file"] = meta.source_key
            out["next_record"] = meta.record_end + 1
            return out
    if files:
        out["current_file"] = files[0].key
        out["next_record"] = 1
    return out


def export_status(svc: Services, site: SiteConfig, total: int) -> dict[str, Any] | None:
    """Where the site's export stands, from bucketbridge's own ledger (not the bucket);
    ``total`` is the site's revision count, as ``import_status`` found it."""
    if not site.exports:
        return None
    ledger = ExportLedger(svc.store_s3, svc.settings.store_bucket).load(site.site_id)
    last = svc.statuses.read(site.site_id, "export")
    return {
        "bucket": site.export_bucket, "prefix": site.export_prefix,
        "position": ledger.position, "exported_revisions": len(ledger.rows),
        "total_revisions": total, "lag_revisions": max(0, total - ledger.position),
        "last_exported_revision": ledger.rows[-1].number if ledger.rows else None,
        "last_commit_at": ledger.last_success_at,
        "last_run_at": last.finished_at, "last_run_outcome": last.outcome,
        "last_error": last.last_error, "last_error_at": last.last_error_at,
    }
