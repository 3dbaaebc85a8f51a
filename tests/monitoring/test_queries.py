"""Every dashboard and alert query parses and names only metrics and labels the code exports."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.catalog import (
    DASHBOARD_JSON,
    Query,
    alert_queries,
    dashboard_queries,
    dashboard_variable_metrics,
    exported_samples,
    load_yaml,
)
from tests.monitoring.promql import legend_labels, names

pytestmark = pytest.mark.timeout(60)

EXPORTED = exported_samples()
QUERIES = alert_queries() + dashboard_queries()


def unknown_names(query: Query, exported: dict[str, frozenset[str]]) -> list[str]:
    """What ``query`` uses that the code does not export: metric names, then label names."""
    found = names(query.runnable())
    problems = [f"metric {m}" for m in sorted(found.metrics - set(exported))]
    labels: set[str] = set()
    for metric in found.metrics & set(exported):
        labels |= exported[metric]
    used = found.labels | legend_labels(query.legend)
    problems += [f"label {lbl}" for lbl in sorted(used - labels)]
    # On a metric the code labels with `job_kind`, `job` is the scrape's: almost surely a mistake.
    if "job" in used and "job_kind" in labels:
        problems.append("label job (the scrape job here; the code's label is job_kind)")
    return problems


def test_the_exported_samples_come_from_the_code() -> None:
    # Then the derived catalog has each kind of sample, under the names Prometheus stores
    assert "bucketbridge_messages_total" in EXPORTED
    assert {"bucketbridge_job_duration_seconds_bucket", "bucketbridge_job_duration_seconds_sum",
            "bucketbridge_job_duration_seconds_count"} <= set(EXPORTED)
    assert "le" in EXPORTED["bucketbridge_job_duration_seconds_bucket"]
    assert "bucketbridge_site_import_backlog_files" in EXPORTED
    # And the code's job_kind label stands beside the scrape's job and instance
    assert {"job_kind", "job", "instance"} <= EXPORTED["bucketbridge_job_errors_total"]


def test_every_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    # Given every dashboard query as a recording rule (the alerts are rules already)
    rules: list[dict[str, Any]] = [
        {"record": f"bucketbridge_dashboard:query_{i}", "expr": q.runnable()}
        for i, q in enumerate(dashboard_queries())]
    assert rules
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    # When promtool checks them
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=30, check=False)
    # Then each one parses
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.where)
def test_every_query_names_only_exported_metrics_and_labels(query: Query) -> None:
    # Then the query reads at least one bucketbridge metric
    assert names(query.runnable()).metrics, f"{query.where} reads no metric"
    # And nothing it names is unknown to the code
    assert unknown_names(query, EXPORTED) == [], query.expr


def test_the_dashboard_variables_list_exported_metrics() -> None:
    variables = dashboard_variable_metrics()
    assert variables
    for name, metric in variables:
        assert metric in EXPORTED, f"variable {name} lists {metric}"


def test_the_name_check_catches_what_the_code_does_not_export() -> None:
    # Given queries with typical mistakes
    bad = {
        "up": "metric up",
        "rate(bucketbridge_import_rows[5m])": "metric bucketbridge_import_rows",
        'bucketbridge_job_errors_total{job="scan"}': "label job (the scrape job here; the "
                                                       "code's label is job_kind)",
        "sum by (reason) (rate(bucketbridge_job_errors_total{site=~\".*\"}[5m]))": "label site",
    }
    for expr, problem in bad.items():
        # Then each is reported
        assert problem in unknown_names(Query("t", expr), EXPORTED), expr
    # And a legend naming a label the query's metric lacks is reported too
    assert unknown_names(Query("t", "bucketbridge_messages_total", "{{site}}"), EXPORTED) == [
        "label site"]


def test_the_lexer_reads_metrics_and_labels() -> None:
    found = names('sum by (site) (rate(a_total{site=~"x|y", reason!="b c"}[5m] offset 1h)) '
                  '> on (site) group_left (reason) max without (instance) (b) '
                  'or vector(0) and histogram_quantile(0.9, c_bucket) > 6 * 3600')
    assert found.metrics == {"a_total", "b", "c_bucket"}
    assert found.labels == {"site", "reason", "instance"}


def test_every_metric_the_code_exports_is_on_the_dashboard() -> None:
    # Given the metric families the code defines (one sample name each: _total, _count, …)
    families = {n for n in EXPORTED if not n.endswith(("_created", "_sum", "_bucket"))}
    # When the dashboard's queries are read
    used: set[str] = set()
    for query in dashboard_queries():
        used |= names(query.runnable()).metrics
    used = {n.removesuffix("_bucket") + "_count" if n.endswith("_bucket") else n for n in used}
    # Then every family has a panel
    assert families - used == set()


def test_the_dashboard_layout_is_sound() -> None:
    model = load_yaml(DASHBOARD_JSON)
    panels = model["panels"]
    # Then ids are unique, panels fit Grafana's 24 columns and none overlaps another
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"panel {p['title']!r} overlaps another"
        cells |= mine
    # And every panel but the rows has a title, a description and a query on $datasource
    for p in panels:
        if p["type"] == "row":
            continue
        assert p["title"] and p["description"], p
        assert p["datasource"]["uid"] == "${datasource}"
        assert p["targets"], p["title"]
