"""Write the generated monitoring files from their sources; ``--check`` fails if one is stale.

    python k8s/monitoring/generate.py           after editing rules.yaml or dashboard.py
    python k8s/monitoring/generate.py --check   what tests/monitoring runs

Sources: ``rules.yaml`` (alert rules, plain Prometheus format, also what promtool checks) and
``dashboard.py``.  Generated: ``k8s/base/prometheusrule.yaml`` (the same groups in a Prometheus
Operator PrometheusRule), ``bucketbridge-dashboard.json`` (import it in Grafana by hand) and
``k8s/base/grafana-dashboard.yaml`` (the same JSON in a ConfigMap for Grafana's sidecar).
No dependency beyond the standard library: the YAML is written as text.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from dashboard import dashboard_json

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RULES = HERE / "rules.yaml"
DASHBOARD_JSON = HERE / "bucketbridge-dashboard.json"
PROMETHEUS_RULE = REPO / "k8s" / "base" / "prometheusrule.yaml"
DASHBOARD_CONFIGMAP = REPO / "k8s" / "base" / "grafana-dashboard.yaml"

PROMETHEUS_RULE_HEADER = """\
# GENERATED from k8s/monitoring/rules.yaml by k8s/monitoring/generate.py: edit rules.yaml (the
# plain rules file promtool checks) and run `python k8s/monitoring/generate.py`.
# A Prometheus selects PrometheusRules by label; an overlay adds the label its Prometheus
# expects (e.g. release: ...), as for podmonitor.yaml.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: bucketbridge
  labels:
    app.kubernetes.io/name: bucketbridge
    app.kubernetes.io/component: monitoring
spec:
"""

CONFIGMAP_HEADER = """\
# GENERATED from k8s/monitoring/dashboard.py by k8s/monitoring/generate.py: edit dashboard.py
# and run `python k8s/monitoring/generate.py`.
# Grafana's dashboard sidecar (e.g. kube-prometheus-stack's) loads ConfigMaps labelled
# grafana_dashboard: "1"; bucketbridge-dashboard.json beside dashboard.py is the same JSON.
apiVersion: v1
kind: ConfigMap
metadata:
  name: bucketbridge-grafana-dashboard
  labels:
    app.kubernetes.io/name: bucketbridge
    app.kubernetes.io/component: monitoring
    grafana_dashboard: "1"
data:
  bucketbridge.json: |
"""


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(pad + line if line.strip() else line
                   for line in text.splitlines(keepends=True))


def prometheus_rule(rules_text: str) -> str:
    """``rules.yaml``'s ``groups:`` (and everything after it) under ``spec:``."""
    lines = rules_text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == "groups:"), None)
    if start is None:
        raise ValueError("rules.yaml has no top-level 'groups:' line")
    return PROMETHEUS_RULE_HEADER + _indent("".join(lines[start:]), 2)


def dashboard_configmap(json_text: str) -> str:
    return CONFIGMAP_HEADER + _indent(json_text, 4)


def outputs() -> dict[Path, Callable[[], str]]:
    """Each generated file and how to make its content."""
    return {
        PROMETHEUS_RULE: lambda: prometheus_rule(RULES.read_text(encoding="utf-8")),
        DASHBOARD_JSON: dashboard_json,
        DASHBOARD_CONFIGMAP: lambda: dashboard_configmap(dashboard_json()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a generated file is not up to date")
    args = parser.parse_args(argv)
    stale = []
    for path, make in outputs().items():
        content = make()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if content == current:
            continue
        if args.check:
            stale.append(path.relative_to(REPO))
        else:
            path.write_text(content, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    if stale:
        print("stale generated file(s): " + ", ".join(map(str, stale))
              + "; run: python k8s/monitoring/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
