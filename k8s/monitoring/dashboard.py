"""The bucketbridge Grafana dashboard as code: panels are data, rendered to Grafana's JSON model.

Written for Grafana 10.4 to 11.x (``schemaVersion`` 39, panel types ``row``, ``stat`` and
``timeseries``); Grafana migrates the model forward by itself.  After a change run
``python k8s/monitoring/generate.py`` to rewrite ``bucketbridge-dashboard.json`` and the
ConfigMap ``k8s/base/grafana-dashboard.yaml``; tests/monitoring fails while they are stale, and
checks that every query parses, names only metrics the code exports and returns data from a
real fleet.

Query conventions (see also rules.yaml): job metrics carry ``job_kind`` (scan / export), as
``job`` is the scrape job's.  No worker metric has a ``site`` label: per-site figures are the
scheduler's bounded ``bucketbridge_site_*`` families (the sites needing attention most), taken
as ``max by (site)`` over the scheduler replicas; ``$site`` is a multi-value variable over the
sites with a problem (``.*`` for All).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

TITLE = "bucketbridge"
UID = "bucketbridge"
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SITE_VARIABLE_QUERY = "label_values(bucketbridge_site_problem_since_timestamp_seconds, site)"
GRID_WIDTH = 24

# Placeholders Grafana fills in; tests substitute them to run the queries themselves.
RATE = "$__rate_interval"
SITE = 'site=~"$site"'


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Threshold:
    value: float
    color: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    targets: tuple[Target, ...]
    unit: str = "short"
    kind: str = "timeseries"  # or "stat": the last value, large
    width: int = 12
    height: int = 8
    thresholds: tuple[Threshold, ...] = ()


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def _stat(title: str, description: str, expr: str, unit: str = "short",
          thresholds: tuple[Threshold, ...] = ()) -> Panel:
    return Panel(title, description, (Target(expr),), unit=unit, kind="stat", width=4,
                 height=4, thresholds=thresholds)


def _quantiles(metric: str, by: str, legend: str) -> tuple[Target, ...]:
    return tuple(
        Target(f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket[{RATE}])))",
               f"p{round(q * 100)} {legend}")
        for q in (0.5, 0.95, 0.99))


ROWS: tuple[Row, ...] = (
    Row("Overview", (
        _stat("Scheduler: last tick", "Seconds since the freshest scheduler replica completed "
              "a tick (they tick every 15 s). Red: nothing is being published.",
              "time() - max(bucketbridge_scheduler_last_tick_timestamp_seconds)", unit="s",
              thresholds=(Threshold(60, "orange"), Threshold(120, "red"))),
        _stat("Messages waiting", "Messages ready in the broker's queues, not yet fetched "
              "by a worker (as the scheduler last read them).",
              'sum(max by (queue_name) (bucketbridge_queue_messages{state="ready"}))'),
        _stat("Messages in flight", "Messages the worker processes are working on now.",
              "sum(bucketbridge_messages_inprogress)"),
        _stat("Dead letters waiting", "Dead-lettered messages kept in Redis for inspection "
              "(bucketbridge dlq list / requeue / purge).",
              'sum(max by (queue_name) (bucketbridge_queue_messages{state="dead"}))',
              thresholds=(Threshold(1, "red"),)),
        _stat("Sites failing", "Sites whose last scan or export ended in an error that is "
              "not resolved, or that are misconfigured or refused (bucketbridge sites list "
              "--failing names them).",
              'sum(max by (state) (bucketbridge_sites{state=~"failing|misconfigured|refused"}))'
              " or vector(0)", thresholds=(Threshold(1, "orange"),)),
        _stat("Sites without an export for 12 h", "Sites (of the oldest the scheduler shows) "
              "whose last successful export is more than 12 hours old; an idle site's is "
              "refreshed every 4 hours, exports run every 2.",
              "count(time() - max by (site) (bucketbridge_site_export_last_success_timestamp_"
              "seconds) > 12 * 3600) or vector(0)", thresholds=(Threshold(1, "red"),)),
    )),
    Row("Throughput", (
        Panel("Rows imported /s", "CSV data rows imported into revisions, fleet-wide.", (
            Target(f"sum(rate(bucketbridge_import_rows_total[{RATE}]))", "rows"),)),
        Panel("Revisions written and exported /s", "Revisions created in the event store (by "
              "source) and revisions copied to customers' export buckets.", (
                  Target("sum by (source) (rate(bucketbridge_revisions_written_total"
                         f"[{RATE}]))", "written {{source}}"),
                  Target(f"sum(rate(bucketbridge_export_revisions_total[{RATE}]))",
                         "exported"))),
        Panel("Bytes read and exported /s", "Import file bytes read (decompressed) and "
              "revision bytes copied to export buckets.", (
                  Target(f"sum(rate(bucketbridge_import_read_bytes_total[{RATE}]))", "read"),
                  Target(f"sum(rate(bucketbridge_export_copied_bytes_total[{RATE}]))",
                         "exported")), unit="Bps"),
        Panel("Import files completed /h", "Import files finished and moved to "
              "completed_imports/.", (
                  Target("sum(increase(bucketbridge_import_files_completed_total[1h]))",
                         "completed"),)),
    )),
    Row("Queues and messages", (
        Panel("Queue depth", "Messages in the broker's queues by state: ready to be fetched, "
              "delayed for a retry, dead-lettered; as the scheduler last read them (every "
              "15 s). Messages being processed are in none of them.", (
                  Target("max by (queue_name, state) (bucketbridge_queue_messages)",
                         "{{queue_name}} {{state}}"),)),
        Panel("Messages in flight by actor", "Messages being processed now, by queue and "
              "actor.", (
                  Target("sum by (queue_name, actor_name) (bucketbridge_messages_inprogress)",
                         "{{queue_name}} {{actor_name}}"),)),
        Panel("Messages processed /s", "Messages the workers finished, with or without error.",
              (Target("sum by (queue_name, actor_name) (rate(bucketbridge_messages_total"
                      f"[{RATE}]))", "{{queue_name}} {{actor_name}}"),)),
        Panel("Message errors, retries and dead letters /s", "Messages whose actor raised, "
              "messages re-enqueued for a retry, and messages dead-lettered (moved to "
              "dramatiq:<queue>.XQ in Redis).", (
                  Target("sum by (actor_name) (rate(bucketbridge_message_errors_total"
                         f"[{RATE}]))", "errors {{actor_name}}"),
                  Target("sum by (actor_name) (rate(bucketbridge_message_retries_total"
                         f"[{RATE}]))", "retries {{actor_name}}"),
                  Target("sum by (actor_name) (rate(bucketbridge_message_dead_lettered_total"
                         f"[{RATE}]))", "dead-lettered {{actor_name}}"))),
        Panel("Message duration", "Time spent processing a message, by actor.",
              _quantiles("bucketbridge_message_duration_seconds", "actor_name",
                         "{{actor_name}}"), unit="s"),
    )),
    Row("Jobs", (
        Panel("Job duration", "Time a scan or export job took (bounded by its budget).",
              _quantiles("bucketbridge_job_duration_seconds", "job_kind",
                         "{{job_kind}}"), unit="s"),
        Panel("Job outcomes /s", "How jobs ended: done, budget (stopped at the budget with "
              "work left), busy (lease held elsewhere), error, …", (
                  Target("sum by (job_kind, outcome) (rate("
                         f"bucketbridge_job_duration_seconds_count[{RATE}]))",
                         "{{job_kind}} {{outcome}}"),)),
        Panel("Budget exhaustions /h", "Jobs that stopped at their budget with work left, by "
              "job. The sites that keep doing so: the 'Longest-standing problems' panel "
              "(problem budget).", (
                  Target("sum by (job_kind) (increase("
                         "bucketbridge_budget_exhausted_total[1h]))", "{{job_kind}}"),)),
        Panel("Busy leases /h", "Messages acked without work because the site's lease was "
              "held by another worker, by job.", (
                  Target("sum by (job_kind) (increase(bucketbridge_lease_busy_total[1h]))",
                         "{{job_kind}}"),)),
    )),
    Row("Fleet", (
        Panel("Sites by state", "Registered sites: active, paused, failing, misconfigured "
              "(site.json unreadable or invalid), refused (breaks tenant isolation).", (
                  Target("max by (state) (bucketbridge_sites)", "{{state}}"),)),
        Panel("Fleet backlog and lag", "Import files waiting and revisions not yet exported, "
              "summed over every site's last run.", (
                  Target("max(bucketbridge_fleet_import_backlog_files)", "import files"),
                  Target("max(bucketbridge_fleet_export_lag_revisions)",
                         "revisions not exported"))),
        Panel("Largest import backlogs", "Import files waiting, for the sites with the largest "
              "backlogs (BUCKETBRIDGE_ATTENTION_SITES of them).", (
                  Target(f"max by (site) (bucketbridge_site_import_backlog_files{{{SITE}}})",
                         "{{site}}"),)),
        Panel("Largest export lags", "Revisions not yet exported, for the sites furthest "
              "behind (today's revisions wait for tomorrow's cycle).", (
                  Target(f"max by (site) (bucketbridge_site_export_lag_revisions{{{SITE}}})",
                         "{{site}}"),)),
        Panel("Oldest successful exports", "Seconds since the last export that ended without "
              "error, for the sites where it is oldest.", (
                  Target("time() - max by (site) ("
                         f"bucketbridge_site_export_last_success_timestamp_seconds{{{SITE}}})",
                         "{{site}}"),), unit="s",
              thresholds=(Threshold(12 * 3600, "orange"), Threshold(26 * 3600, "red"))),
        Panel("Longest-standing problems", "How long each site's job has been in its problem "
              "(error, bucket_error, blocked, refused, misconfigured, retrying, budget, busy), "
              "for the longest-standing ones.", (
                  Target("time() - max by (site, job_kind, problem) ("
                         f"bucketbridge_site_problem_since_timestamp_seconds{{{SITE}}})",
                         "{{site}} {{job_kind}} {{problem}}"),), unit="s"),
        Panel("Site configurations skipped /h", "Site configurations the scheduler could not "
              "read or accept (each is skipped, the rest of the fleet goes on).", (
                  Target("sum(increase(bucketbridge_site_configs_skipped_total[1h]))",
                         "skipped"),)),
    )),
    Row("Errors", (
        Panel("Job errors by reason /s", "Scan and export jobs that ended in an error, by "
              "reason (the error's type).", (
                  Target("sum by (job_kind, reason) (rate(bucketbridge_job_errors_total"
                         f"[{RATE}]))", "{{job_kind}} {{reason}}"),)),
        Panel("Export failures by reason /h", "Export runs that failed, by reason.", (
            Target("sum by (reason) (increase(bucketbridge_export_failures_total[1h]))",
                   "{{reason}}"),)),
        Panel("Import files failed /h", "Import files moved to failed_imports/ with an error "
              "report.", (
                  Target("sum(increase(bucketbridge_import_files_failed_total[1h]))",
                         "failed"),)),
        Panel("Rows rejected by reason /h", "Invalid data rows skipped and listed in the "
              "file's .errors.csv report, by reason.", (
                  Target("sum by (reason) (increase("
                         "bucketbridge_import_rows_rejected_total[1h]))", "{{reason}}"),)),
    )),
    Row("Scheduler", (
        Panel("Seconds since each scheduler's last tick", "Per scheduler replica; they tick "
              "every 15 s.", (
                  Target("time() - bucketbridge_scheduler_last_tick_timestamp_seconds",
                         "{{instance}}"),), unit="s",
              thresholds=(Threshold(60, "orange"), Threshold(120, "red"))),
        Panel("Messages published /h", "Scan and export messages the schedulers published.", (
            Target("sum by (job_kind) (increase(bucketbridge_scheduler_published_total"
                   "[1h]))", "{{job_kind}}"),)),
    )),
)


# -- event-driven import (``bucketbridge listen``): a self-contained row ---------------------
# The listener's metrics have no site label; workers and schedulers expose them at zero, so
# the queries take max/sum over every pod.


def _notifications_row() -> Row:
    return Row("Notifications (event-driven import)", (
        _stat("Listener: last receive", "Seconds since the freshest listener replica last "
              "received from the queue (a receive waits up to 20 s). Red: no listener reads "
              "the queue; uploads wait for the hourly scans.",
              "time() - max(bucketbridge_notify_last_receive_timestamp_seconds > 0)", unit="s",
              thresholds=(Threshold(120, "orange"), Threshold(300, "red"))),
        _stat("Oldest notification waiting", "Age of the oldest message in a listener's last "
              "receive: how far the listeners are behind the uploads.",
              "max(bucketbridge_notify_oldest_message_age_seconds)", unit="s",
              thresholds=(Threshold(60, "orange"), Threshold(300, "red"))),
        Panel("Notification events /s", "Queue messages received, object-created events read, "
              "events matched to a site, events for no active site (dropped) and malformed "
              "messages (deleted).", (
                  Target(f"sum(rate(bucketbridge_notify_messages_total[{RATE}]))", "messages"),
                  Target(f"sum(rate(bucketbridge_notify_events_total[{RATE}]))", "events"),
                  Target(f"sum(rate(bucketbridge_notify_events_matched_total[{RATE}]))",
                         "matched"),
                  Target(f"sum(rate(bucketbridge_notify_events_unmatched_total[{RATE}]))",
                         "unmatched"),
                  Target(f"sum(rate(bucketbridge_notify_messages_malformed_total[{RATE}]))",
                         "malformed"))),
        Panel("Scans published by the listeners /h", "Scan messages the listeners published; "
              "far fewer than the events matched: a burst of uploads to a site becomes one "
              "scan until that scan starts.", (
                  Target("sum(increase(bucketbridge_notify_scans_published_total[1h]))",
                         "scans"),
                  Target("sum(increase(bucketbridge_notify_events_matched_total[1h]))",
                         "events matched"))),
    ))


ROWS = (*ROWS, _notifications_row())


def _thresholds(panel: Panel) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": t.color, "value": t.value} for t in panel.thresholds]
    return {"mode": "absolute", "steps": steps}


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {
            "defaults": {"unit": panel.unit, "thresholds": _thresholds(panel)},
            "overrides": [],
        },
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": t.expr,
             "legendFormat": t.legend or "__auto", "range": panel.kind != "stat",
             "instant": panel.kind == "stat"}
            for i, t in enumerate(panel.targets)
        ],
    }
    if panel.kind == "stat":
        out["fieldConfig"]["defaults"]["color"] = {"mode": "thresholds"}
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                            "values": False},
                          "colorMode": "value", "graphMode": "none", "textMode": "auto"}
    else:
        out["fieldConfig"]["defaults"]["min"] = 0
        out["fieldConfig"]["defaults"]["custom"] = {
            "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "line" if panel.thresholds else "off"}}
        out["options"] = {"legend": {"displayMode": "table", "placement": "bottom",
                                     "showLegend": True, "calcs": ["lastNotNull", "max"]},
                          "tooltip": {"mode": "multi", "sort": "desc"}}
    return out


def _panels() -> list[dict[str, Any]]:
    """Rows and their panels, laid out left to right, top to bottom on Grafana's 24 columns."""
    out: list[dict[str, Any]] = []
    y = 0
    for row in ROWS:
        out.append({"id": len(out) + 1, "type": "row", "title": row.title, "collapsed": False,
                    "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y}, "panels": []})
        y += 1
        x = 0
        line_height = 0
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            out.append(_panel(panel, len(out) + 1, x, y))
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return out


def _templating() -> dict[str, Any]:
    return {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": ""},
        {"name": "site", "label": "Site", "type": "query", "datasource": DATASOURCE,
         "definition": SITE_VARIABLE_QUERY,
         "query": {"query": SITE_VARIABLE_QUERY, "refId": "site"},
         "multi": True, "includeAll": True, "allValue": ".*",
         "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
         "refresh": 2, "sort": 1, "hide": 0, "regex": ""},
    ]}


def dashboard() -> dict[str, Any]:
    """The dashboard's JSON model."""
    return {
        "uid": UID,
        "title": TITLE,
        "description": "bucketbridge fleet: imports, exports, queues, errors, scheduler. "
                       "Alerts: k8s/monitoring/rules.yaml; runbooks: docs/operations.md.",
        "tags": ["bucketbridge"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "utc",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "annotations": {"list": []},
        "links": [],
        "templating": _templating(),
        "panels": _panels(),
    }


def dashboard_json() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"
