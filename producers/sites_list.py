"""``bucketbridge sites list [--failing] [--json]``: the fleet's health, one row per site, worst
first: state, last scan and export (outcome, age), import backlog, export lag, last error.

It reads the site index and the fleet status summary: one listing and one read per shard of
each (some 130 requests), however many sites there are; and from Redis when each job last ran
(an idle site's runs rewrite no summary), one round trip per 1,000 sites.  On a terminal a
table, on a pipe tab-separated lines (``producers.output``), with ``--json`` every figure.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from producers.context import AppContext
from producers.fleetview import NEEDS_ATTENTION, SiteHealth, fleet_health
from producers.output import human_bytes, human_duration, print_json, print_table
from shared.errors import ObjectMissing
from shared.fleet.reportmemo import ReportMemo
from shared.formats.times import iso_utc_ms, parse_iso_utc
from shared.services import Services
from shared.store.fleetstatus import JobSummary, SiteSummary

pass_app = click.make_pass_decorator(AppContext)

COLUMNS = ("Site", "State", "Last scan", "Last export", "Backlog", "Export lag", "Last error")


def read_fleet(svc: Services) -> list[SiteHealth]:
    """Every registered site's health, worst first; rebuilds a missing site index."""
    try:
        svc.index.marker(None)
    except ObjectMissing:
        click.echo("no site index yet: building it from sites/ (two requests per site)",
                   err=True)
        svc.index.rebuild()
    configs = svc.index.read_all()
    summaries = list(svc.fleet_status.read_all())
    memo = ReportMemo(svc.redis, svc.settings.store_bucket)
    runs = memo.last_runs([(job, s.site) for s in summaries for job in s.jobs])
    return fleet_health(configs, (_fresher(s, runs) for s in summaries))


def _fresher(summary: SiteSummary, runs: dict[tuple[str, str], float]) -> SiteSummary:
    """``summary`` with each job's time of its last run, where Redis knows a later one than
    the summary's (a run that reported nothing new rewrote no summary)."""
    jobs = dict(summary.jobs)
    for job, state in summary.jobs.items():
        ran_s = runs.get((job, summary.site))
        if ran_s is not None and (not state.at or ran_s > parse_iso_utc(state.at)):
            jobs[job] = replace(state, at=iso_utc_ms(ran_s))
    return SiteSummary(summary.site, jobs)


def _age_s(at: str | None, now_s: float) -> float | None:
    return None if not at else max(0.0, now_s - parse_iso_utc(at))


def _job_json(job: JobSummary, now_s: float) -> dict[str, Any]:
    return {**job.as_json(), "problem": job.problem, "age_s": _age_s(job.at, now_s)}


def health_json(h: SiteHealth, now_s: float) -> dict[str, Any]:
    error = h.last_error
    return {
        "site": h.site, "state": h.state.value, "paused": bool(h.config and h.config.paused),
        "scan": _job_json(h.job("scan"), now_s) if "scan" in h.jobs else None,
        "export": (_job_json(h.job("export"), now_s) if "export" in h.jobs else None)
        if h.exports else None,
        "backlog_files": h.job("scan").backlog_files,
        "backlog_bytes": h.job("scan").backlog_bytes,
        "export_lag_revisions": h.job("export").lag_revisions if h.exports else None,
        "last_error": error[0] if error else None,
        "last_error_at": error[1] if error else None,
        "last_error_age_s": _age_s(error[1], now_s) if error else None,
    }


def _ago(at: str | None, now_s: float) -> str:
    age = _age_s(at, now_s)
    return "" if age is None else f" {human_duration(age)} ago"


def _run(job: JobSummary, now_s: float) -> str:
    return f"{job.outcome}{_ago(job.at, now_s)}" if job.outcome else "never"


def health_row(h: SiteHealth, now_s: float) -> tuple[str, ...]:
    scan = h.job("scan")
    backlog = "-" if scan.backlog_files is None else (
        f"{scan.backlog_files} file(s), {human_bytes(scan.backlog_bytes or 0)}")
    if h.exports:
        export = _run(h.job("export"), now_s)
        lag_revisions = h.job("export").lag_revisions
        lag = "-" if lag_revisions is None else f"{lag_revisions} revision(s)"
    else:
        export, lag = "not configured", "-"
    error = h.last_error
    shown_error = f"{error[0]}{_ago(error[1], now_s)}" if error else "-"
    return (h.site, h.state.value, _run(scan, now_s), export, backlog, lag, shown_error)


@click.command("list")
@click.option("--failing", is_flag=True,
              help="Only the sites that need attention: failing, refused, misconfigured.")
@click.option("--json", "as_json", is_flag=True, help="Print every figure as JSON.")
@pass_app
def list_sites(app: AppContext, failing: bool, as_json: bool) -> None:
    """The fleet's health, one row per site, worst first."""
    svc = app.services
    now_s = svc.clock.now_s()
    rows = read_fleet(svc)
    if failing:
        rows = [h for h in rows if h.state in NEEDS_ATTENTION]
    if as_json:
        print_json([health_json(h, now_s) for h in rows])
        return
    print_table(COLUMNS, [health_row(h, now_s) for h in rows])
