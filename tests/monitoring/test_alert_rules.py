"""The alert rules: promtool accepts them, the PrometheusRule carries the same groups, each
alert tells on-call what to do, and each fires on its situation (promtool's rule unit tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.monitoring.catalog import (
    DASHBOARD_CONFIGMAP,
    DASHBOARD_JSON,
    OPERATIONS_DOC,
    PROMETHEUS_RULE,
    RULES,
    RULES_TESTS,
    alert_rules,
    load_yaml,
)

pytestmark = pytest.mark.timeout(60)

SEVERITIES = {"warning", "critical"}
RUNBOOK_PREFIX = "docs/operations.md#"


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=REPO,
                          check=False)


def test_promtool_accepts_the_rules_file(promtool: str) -> None:
    # When promtool checks the plain rules file
    result = run([promtool, "check", "rules", str(RULES)])
    # Then it accepts every rule
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout, result.stdout


def test_the_prometheus_rule_has_the_groups_of_the_rules_file() -> None:
    # Given the PrometheusRule of the kustomize base
    resource = load_yaml(PROMETHEUS_RULE)
    # Then it is a Prometheus Operator rule whose groups are exactly the plain file's
    assert (resource["apiVersion"], resource["kind"]) == ("monitoring.coreos.com/v1",
                                                          "PrometheusRule")
    assert resource["metadata"]["name"] == "bucketbridge"
    assert resource["spec"]["groups"] == load_yaml(RULES)["groups"]


def test_the_dashboard_configmap_holds_the_dashboard_json() -> None:
    # Given the ConfigMap Grafana's sidecar loads
    resource = load_yaml(DASHBOARD_CONFIGMAP)
    # Then it has the sidecar's label and the same dashboard as the JSON file
    assert (resource["apiVersion"], resource["kind"]) == ("v1", "ConfigMap")
    assert resource["metadata"]["labels"]["grafana_dashboard"] == "1"
    (name, text), = resource["data"].items()
    assert name.endswith(".json")
    assert yaml.safe_load(text) == load_yaml(DASHBOARD_JSON)


def test_the_generated_files_are_up_to_date() -> None:
    # When the generator checks its outputs against their sources
    result = run([sys.executable, str(REPO / "k8s" / "monitoring" / "generate.py"), "--check"])
    # Then none is stale
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("rule", alert_rules(),
                         ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_every_alert_says_how_bad_what_and_where_to_read_more(rule: dict[str, Any]) -> None:
    # Then it has a severity Alertmanager can route on
    assert rule["labels"]["severity"] in SEVERITIES
    assert rule["labels"]["service"] == "bucketbridge"
    # And a one-line summary and a description of what to do
    notes = rule["annotations"]
    assert notes["summary"].strip() and "\n" not in notes["summary"].strip()
    assert len(notes["description"].split()) >= 15, notes["description"]
    # And a runbook section named after the alert
    assert notes["runbook_url"] == RUNBOOK_PREFIX + rule["alert"].lower()


def heading_anchors(markdown: str) -> set[str]:
    """Anchors GitHub makes for headings, plus explicit ``<a id="…">`` / ``{#…}`` ones."""
    anchors = set(re.findall(r"""<a\s+(?:name|id)=["']([^"']+)["']""", markdown))
    anchors |= set(re.findall(r"\{#([A-Za-z0-9_-]+)\}", markdown))
    for line in markdown.splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_every_runbook_link_has_its_section() -> None:
    # Given the runbook anchors the alerts link to
    wanted = {r["annotations"]["runbook_url"].removeprefix(RUNBOOK_PREFIX) for r in alert_rules()}
    if not OPERATIONS_DOC.exists():
        pytest.skip(f"{OPERATIONS_DOC.relative_to(REPO)} is not written yet; it needs sections "
                    f"for: {', '.join(sorted(wanted))}")
    # Then docs/operations.md has a section for each
    missing = wanted - heading_anchors(OPERATIONS_DOC.read_text(encoding="utf-8"))
    assert not missing, f"docs/operations.md has no section for: {sorted(missing)}"


def test_heading_anchors_follow_github() -> None:
    doc = "# Ops\n## BucketbridgeExportStale\n### Export: stale (2h)\n<a id=\"custom\"></a>\n"
    assert heading_anchors(doc) == {"ops", "bucketbridgeexportstale", "export-stale-2h",
                                    "custom"}


def without_annotations(rules_text: str) -> str:
    document = yaml.safe_load(rules_text)
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return yaml.safe_dump(document, sort_keys=False)


def split_by_test(rules: dict[str, Any], unit_tests: dict[str, Any]) -> list[dict[str, Any]]:
    """``unit_tests`` as one test file per test, each evaluating only the alerts it names.

    promtool evaluates every rule of its rules files at every step of a test's hours of
    samples; the alerts read no other rule (no recording rules, no ``ALERTS``), so a test of
    one alert gives the same results with only that alert's rules, at a fraction of the cost.
    Returns, for test N, its rules (to be written as ``rules-N.yaml``) and its test file."""
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert "record" not in rule and "ALERTS" not in rule["expr"], \
                "a rule reads another rule: promtool must evaluate the whole file"
    documents = []
    for n, test in enumerate(unit_tests["tests"]):
        names = {case["alertname"] for case in test.get("alert_rule_test", [])}
        groups = [{**group, "rules": [r for r in group["rules"] if r["alert"] in names]}
                  for group in rules["groups"]]
        documents.append({
            "rules": {"groups": [g for g in groups if g["rules"]]},
            "test": {**{k: v for k, v in unit_tests.items() if k != "tests"},
                     "rule_files": [f"rules-{n}.yaml"], "tests": [test]},
        })
    return documents


@pytest.mark.slow(5)
def test_each_alert_fires_on_its_situation_and_not_on_look_alikes(
        promtool: str, tmp_path: Path) -> None:
    # Given the rules (without annotations: promtool would compare their text verbatim) and
    # their unit tests, each test with the rules of the alerts it names
    rules = yaml.safe_load(without_annotations(RULES.read_text(encoding="utf-8")))
    test_files = []
    for n, document in enumerate(split_by_test(rules, load_yaml(RULES_TESTS))):
        (tmp_path / f"rules-{n}.yaml").write_text(yaml.safe_dump(document["rules"],
                                                                 sort_keys=False))
        (tmp_path / f"test-{n}.yaml").write_text(yaml.safe_dump(document["test"],
                                                                sort_keys=False))
        test_files.append(f"test-{n}.yaml")
    # When promtool runs them
    result = subprocess.run([promtool, "test", "rules", *test_files], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    # Then every expectation holds
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(test_files)


def test_every_alert_has_a_unit_test_where_it_fires() -> None:
    # Given the alerts some unit test expects to fire
    tested = {case["alertname"] for test in load_yaml(RULES_TESTS)["tests"]
              for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    # Then that is every alert
    assert {r["alert"] for r in alert_rules()} - tested == set()
