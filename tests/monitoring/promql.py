"""Just enough PromQL lexing to list the metric names and label names a query uses.

Whether a query parses at all is promtool's job; this only reads names out of queries that do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+\b)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<matchop>=~|!~|!=|=(?!=))
  | (?P<punct>[{}(),])
  | (?P<space>\s+)
  | (?P<other>.)
""", re.VERBOSE)

GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
# Aggregations may put their grouping before the parenthesis: ``sum by (site) (x)``.
AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                          "count_values", "bottomk", "topk", "quantile"})
KEYWORDS = GROUPING | AGGREGATIONS | frozenset({"and", "or", "unless", "offset", "bool", "inf",
                                               "nan", "atan2"})


@dataclass
class Names:
    metrics: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)


def _tokens(expr: str) -> list[tuple[str, str]]:
    out = []
    for m in _TOKEN.finditer(expr):
        kind = m.lastgroup or "other"
        if kind != "space":
            out.append((kind, m.group()))
    return out


def names(expr: str) -> Names:
    """The metric names (bare selectors) and label names (matchers, grouping) in ``expr``."""
    found = Names()
    tokens = _tokens(expr)
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "punct" and text == "{":
            i += 1
            while i < len(tokens) and tokens[i][1] != "}":
                k, t = tokens[i]
                if k == "ident" and i + 1 < len(tokens) and tokens[i + 1][0] == "matchop":
                    found.labels.add(t)
                i += 1
        elif kind == "ident" and text in GROUPING and nxt == "(":
            i += 2
            while i < len(tokens) and tokens[i][1] != ")":
                if tokens[i][0] == "ident":
                    found.labels.add(tokens[i][1])
                i += 1
        elif kind == "ident" and text not in KEYWORDS and nxt != "(":
            found.metrics.add(text)
        i += 1
    return found


LEGEND_LABEL = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def legend_labels(legend: str) -> set[str]:
    """Label names a Grafana legend format refers to (``{{site}}``)."""
    return set(LEGEND_LABEL.findall(legend))
