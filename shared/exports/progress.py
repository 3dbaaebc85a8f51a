"""A site's export picture for ``bucketbridge status``, from bucketbridge's own ledger (never
from the customer's bucket)."""

from __future__ import annotations

from typing import Any

from shared.formats.exportfiles import export_location
from shared.store.jobstatus import StatusStore
from shared.store.ledger import ExportLedger
from shared.store.sites import SiteConfig


def export_status(ledger: ExportLedger, statuses: StatusStore, site: SiteConfig,
                  total: int) -> dict[str, Any] | None:
    """``total`` is the site's revision count, as the import status found it."""
    if not site.exports:
        return None
    state = ledger.load(site.site_id, export_location(site.export_bucket or "",
                                                      site.export_prefix))
    last = statuses.read(site.site_id, "export")
    return {
        "bucket": site.export_bucket, "prefix": site.export_prefix,
        "position": state.position, "exported_revisions": len(state.rows),
        "total_revisions": total, "lag_revisions": max(0, total - state.position),
        "last_exported_revision": state.rows[-1].number if state.rows else None,
        "last_commit_at": state.last_success_at,
        "last_run_at": last.finished_at, "last_run_outcome": last.outcome,
        "last_success_at": last.last_success_at,
        "last_error": last.last_error, "last_error_at": last.last_error_at,
        "last_error_resolved": last.error_resolved,
    }
