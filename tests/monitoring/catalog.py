"""What the monitoring files ask of the code, and what the code offers.

``exported_samples()`` derives every sample name bucketbridge can expose, with its label names
as Prometheus stores them, from ``shared.metrics.Metrics`` itself: never a hand-kept list.
``alert_queries()`` and ``dashboard_queries()`` read the queries out of rules.yaml and
dashboard.py.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tests.conftest import REPO
from tests.metric_samples import sampled_metrics

MONITORING = REPO / "k8s" / "monitoring"
RULES = MONITORING / "rules.yaml"
RULES_TESTS = MONITORING / "rules.test.yaml"
PROMETHEUS_RULE = REPO / "k8s" / "base" / "prometheusrule.yaml"
DASHBOARD_JSON = MONITORING / "bucketbridge-dashboard.json"
DASHBOARD_CONFIGMAP = REPO / "k8s" / "base" / "grafana-dashboard.yaml"
OPERATIONS_DOC = REPO / "docs" / "operations.md"

# Labels the scrape adds to every series.  A scraped label that collides with one of them is
# kept as exported_<name> (honor_labels: false, the default and what the PodMonitor uses).
TARGET_LABELS = frozenset({"job", "instance"})

# What Grafana fills in, and what the tests put in its place to run a query themselves.
GRAFANA_SUBSTITUTIONS = {"$__rate_interval": "5m", "$site": ".*"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def stored_label(name: str) -> str:
    return f"exported_{name}" if name in TARGET_LABELS else name


def exported_samples() -> dict[str, frozenset[str]]:
    """Every sample name the code can expose (suffixes ``_total``, ``_bucket``, ``_sum``,
    ``_count``, ``_created`` included) with the label names Prometheus stores it under."""
    metrics = sampled_metrics()
    out: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            labels = {stored_label(n) for n in sample.labels} | TARGET_LABELS
            out.setdefault(sample.name, set()).update(labels)
    return {name: frozenset(labels) for name, labels in out.items()}


@dataclass(frozen=True)
class Query:
    where: str  # "alert X" or "panel 'Y' target A": for messages
    expr: str
    legend: str = ""

    def runnable(self) -> str:
        """The expression with Grafana's placeholders replaced."""
        text = self.expr
        for placeholder, value in GRAFANA_SUBSTITUTIONS.items():
            text = text.replace(placeholder, value)
        assert "$" not in text, f"{self.where}: unknown placeholder in {text!r}"
        return text


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def alert_queries() -> list[Query]:
    return [Query(f"alert {r['alert']} ({r['labels']['severity']})", r["expr"])
            for r in alert_rules()]


def load_dashboard_module() -> ModuleType:
    name = "bucketbridge_monitoring_dashboard"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, MONITORING / "dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def dashboard_queries() -> list[Query]:
    """Every target of every panel of the generated dashboard JSON."""
    model = load_yaml(DASHBOARD_JSON)  # JSON is YAML
    out = []
    for panel in model["panels"]:
        for target in panel.get("targets", []):
            out.append(Query(f"panel {panel['title']!r} target {target['refId']}",
                             target["expr"], target.get("legendFormat", "")))
    return out


def dashboard_variable_metrics() -> list[tuple[str, str]]:
    """(variable, metric) for every ``label_values(metric, label)`` variable."""
    model = load_yaml(DASHBOARD_JSON)
    out = []
    for var in model["templating"]["list"]:
        if var["type"] != "query":
            continue
        definition = var["definition"]
        assert definition.startswith("label_values(") and definition.endswith(")"), definition
        metric = definition.removeprefix("label_values(").removesuffix(")").split(",")[0]
        out.append((var["name"], metric.strip()))
    return out
