"""Everything ``bucketbridge status SITE`` knows about a site, gathered once: what is running
now (and where), what is queued, when the scheduler publishes next, the import (current file,
progress, backlog, last success and error) and the export.  ``--json`` prints it as it is; the
human view renders the same fields (``status_rows``)."""

from __future__ import annotations

from typing import Any

from producers.output import human_bytes, human_duration
from shared.exports.progress import export_status
from shared.fleet.activity import next_publication_s, notifications, queued, running
from shared.fleet.leases import EXPORT_LEASE, IMPORT_LEASE
from shared.fleet.messages import EXPORT_ACTOR, QUEUES, SCAN_ACTOR
from shared.formats.names import validate_site_id
from shared.formats.times import iso_utc, parse_iso_utc
from shared.imports.cursor import Revisions
from shared.imports.progress import import_status
from shared.services import Services


def site_status(svc: Services, site: str) -> dict[str, Any]:
    config = svc.sites.get(validate_site_id(site))
    now_s = svc.clock.now_s()
    imported = import_status(Revisions(svc.store, svc.tail_cache), svc.statuses, config,
                             svc.access.for_site(config))
    schedule: dict[str, str | None] = {"next_scan_at": None, "next_export_at": None}
    if not config.paused:
        settings = svc.settings
        schedule["next_scan_at"] = iso_utc(next_publication_s(
            svc.redis, SCAN_ACTOR, site, now_s, settings.scan_interval_s))
        if config.exports:
            schedule["next_export_at"] = iso_utc(next_publication_s(
                svc.redis, EXPORT_ACTOR, site, now_s, settings.export_interval_s))
    return {
        "site": site, "paused": config.paused, "checked_at": iso_utc(now_s),
        "running": [r.as_json() for r in running(svc.redis, site, (IMPORT_LEASE, EXPORT_LEASE))],
        "queued": [q.as_json() for q in queued(svc.redis, site, QUEUES)],
        "schedule": schedule,
        "notifications": notifications(svc.redis, site, now_s),
        "import": imported,
        "export": export_status(svc.ledger, svc.statuses, config, imported["revisions"]),
    }


# -- the human view -------------------------------------------------------------------------


def _ago(when: str | None, now_s: float) -> str:
    if not when:
        return "never"
    return f"{when} ({human_duration(now_s - parse_iso_utc(when))} ago)"


def _next(when: str | None, now_s: float, why_not: str) -> str:
    if when is None:
        return why_not
    due_s = parse_iso_utc(when) - now_s
    if due_s <= 0:
        return "due now (the scheduler's next tick)"
    return f"{when} (in {human_duration(due_s)})"


def _error(error: str | None, at: str | None, resolved: bool, now_s: float) -> str:
    if not error:
        return "-"
    return f"{'resolved: ' if resolved else ''}{error} at {_ago(at, now_s)}"


def _current_file(imp: dict[str, Any]) -> str:
    if imp["waiting_for_first_file"]:
        return "waiting for first file"
    current = imp["current_file"]
    p = imp["progress"]
    if not current or p is None:
        return "-"
    size = human_bytes(p["size_bytes"])
    if not p["rows_done"]:
        return f"{current} ({size}), from its first record"
    rate = f", {human_bytes(p['rate_bytes_per_s'])}/s" if p["rate_bytes_per_s"] else ""
    rows = f"{p['rows_done']:,} rows so far"
    if p["gzipped"]:
        return (f"{current} (gzip, {size}): {human_bytes(p['bytes_done'])} read "
                f"(decompressed), {rows}{rate}")
    eta = f", ETA {human_duration(p['eta_s'])}" if p["eta_s"] is not None else ""
    return (f"{current}: {human_bytes(p['bytes_done'])} of {size} ({p['percent']}%), "
            f"{rows}{rate}{eta}")


def _notifications(notes: dict[str, Any], now_s: float) -> str:
    since = notes["since"][11:16]
    if not notes["last_at"]:
        return f"none since {since} UTC"
    return f"last {_ago(notes['last_at'], now_s)}; {notes['recent']} since {since} UTC"


def _running(status: dict[str, Any], now_s: float) -> str:
    if not status["running"]:
        return "-"
    return "; ".join(f"{r['job']} since {_ago(r['since'], now_s)} on {r['worker'] or '?'}"
                     f"{', message ' + r['message_id'] if r['message_id'] else ''}"
                     for r in status["running"])


def _queued(status: dict[str, Any]) -> str:
    if not status["queued"]:
        return "none"
    return f"{len(status['queued'])}: " + ", ".join(
        f"{q['actor']} ({q['state']})" for q in status["queued"])


def status_rows(status: dict[str, Any]) -> list[tuple[str, str]]:
    now_s = parse_iso_utc(status["checked_at"])
    imp = status["import"]
    paused = status["paused"]
    state = "paused" if paused else "active"
    if imp["waiting_for_first_file"]:
        state += ", waiting for first file"
    rows = [("state", state), ("running", _running(status, now_s)),
            ("queued", _queued(status)),
            ("next scan", _next(status["schedule"]["next_scan_at"], now_s,
                                "not scheduled (paused)"))]
    rows.append(("notifications", _notifications(status["notifications"], now_s)))
    if imp["bucket_error"]:
        rows.append(("import bucket", f"ERROR {imp['bucket_error']}"))
    else:
        rows.append(("backlog", f"{imp['backlog_files']} file(s), "
                                f"{human_bytes(imp['backlog_bytes'])}"))
    rows.append(("current file", _current_file(imp)))
    rows.append(("revisions", str(imp["revisions"])))
    rows.append(("last scan", f"{_ago(imp['last_scan_at'], now_s)}: {imp['last_scan_outcome']}"
                 if imp["last_scan_at"] else "never"))
    rows.append(("last success", _ago(imp["last_success_at"], now_s)))
    rows.append(("last error", _error(imp["last_error"], imp["last_error_at"],
                                      imp["last_error_resolved"], now_s)))
    exp = status["export"]
    if exp is None:
        rows.append(("export", "not configured"))
        return rows
    rows.append(("export to", f"s3://{exp['bucket']}/{exp['prefix']}"))
    rows.append(("next export", _next(status["schedule"]["next_export_at"], now_s,
                                      "not scheduled (paused)")))
    rows.append(("export position", f"revision {exp['position']} of {exp['total_revisions']} "
                 f"({exp['exported_revisions']} exported, lag {exp['lag_revisions']})"))
    rows.append(("last export", f"{_ago(exp['last_run_at'], now_s)}: {exp['last_run_outcome']}"
                 if exp["last_run_at"] else "never"))
    rows.append(("export success", _ago(exp["last_success_at"], now_s)))
    rows.append(("export error", _error(exp["last_error"], exp["last_error_at"],
                                        exp["last_error_resolved"], now_s)))
    return rows
