"""Every metric in ``shared.metrics.Metrics`` is exposed under a name Prometheus accepts.

``promtool check metrics`` (Debian package ``prometheus``) lints the exposition.  A missing
promtool fails these tests unless ``BUCKETBRIDGE_SKIP_PROMTOOL=1`` says to skip them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import Counter, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from shared.metrics import Metrics
from tests.conftest import REPO
from tests.metric_samples import metric_objects, touch_every_metric

pytestmark = pytest.mark.timeout(60)

UNIT_OF_HISTOGRAMS = "_seconds"


def all_declared_types(exposition: str) -> dict[str, str]:
    """``# TYPE name type`` lines of a text exposition."""
    out = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            out[name] = kind
    return out


def created_name(name: str, kind: str) -> str | None:
    """The ``_created`` gauge prometheus-client adds beside a counter or histogram."""
    if kind == "counter":
        return name.removesuffix("_total") + "_created"
    if kind == "histogram":
        return name + "_created"
    return None


def declared_types(exposition: str) -> dict[str, str]:
    """The declared metric families, without prometheus-client's ``_created`` companions."""
    types = all_declared_types(exposition)
    companions = {created_name(n, k) for n, k in types.items()} - {None}
    return {n: k for n, k in types.items() if n not in companions}


def sample_names(exposition: str) -> set[str]:
    return {line.split("{", 1)[0].split(" ", 1)[0] for line in exposition.splitlines()
            if line and not line.startswith("#")}


def exposed_name(metric: MetricWrapperBase) -> str:
    # Counters are exposed with _total appended to their family name.
    family = metric._name
    return f"{family}_total" if isinstance(metric, Counter) else family


@pytest.fixture
def exposition() -> str:
    """The text exposition of a process's registry, every metric touched."""
    metrics = Metrics()
    touch_every_metric(metrics)
    return generate_latest(metrics.registry).decode("utf-8")


@pytest.fixture
def multiprocess_exposition(tmp_path: Path) -> str:
    """What a worker pod's endpoint serves: every worker process's files, summed."""
    script = textwrap.dedent("""
        from prometheus_client import generate_latest
        from shared.metrics import Metrics
        from tests.shared.test_metrics_names import touch_every_metric
        from workers.exposition import multiprocess_registry

        touch_every_metric(Metrics())
        print(generate_latest(multiprocess_registry()).decode("utf-8"), end="")
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def require_promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("BUCKETBRIDGE_SKIP_PROMTOOL") == "1":
            pytest.skip("promtool not on PATH and BUCKETBRIDGE_SKIP_PROMTOOL=1")
        pytest.fail("promtool is not on PATH: install it (Debian: apt-get install -y "
                    "prometheus) or set BUCKETBRIDGE_SKIP_PROMTOOL=1 to skip this check")
    return path


def promtool_check(promtool: str, exposition: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True,
                          text=True, timeout=30, check=False)


def test_every_metric_is_exposed_with_its_type_and_help() -> None:
    # Given every metric touched once
    metrics = Metrics()
    touch_every_metric(metrics)
    objects = metric_objects(metrics)
    # When the registry is exposed
    text = generate_latest(metrics.registry).decode("utf-8")
    # Then each metric is declared once, with its type and a help text, and has samples
    expected = {exposed_name(m): m._type for m in objects.values()}
    assert declared_types(text) == expected
    helps = {line.split(" ", 3)[2]: line.split(" ", 3)[3] for line in text.splitlines()
             if line.startswith("# HELP ") and line.split(" ", 3)[2] in expected}
    assert set(helps) == set(expected)
    assert all(h.strip() for h in helps.values()), helps
    samples = sample_names(text)
    for name, kind in expected.items():
        wanted = f"{name}_count" if kind == "histogram" else name
        assert wanted in samples, f"{name} has no samples"


def test_names_have_the_prefix_and_their_unit_suffix(exposition: str) -> None:
    # Given the exposition of every metric
    # When its declared names are read
    types = declared_types(exposition)
    assert types, "nothing exposed"
    for name, kind in types.items():
        # Then every name is bucketbridge's, snake_case
        assert name.startswith("bucketbridge_"), name
        assert name == name.lower() and "__" not in name, name
        # And counters end in _total (once), histograms in _seconds
        if kind == "counter":
            assert name.endswith("_total") and not name.endswith("_total_total"), name
        else:
            assert not name.endswith("_total"), f"{kind} {name} is named like a counter"
        if kind == "histogram":
            assert name.endswith(UNIT_OF_HISTOGRAMS), name
        if name.endswith("_timestamp_seconds"):
            assert kind == "gauge", name


def test_every_sample_belongs_to_a_family_by_the_standard_suffixes(exposition: str) -> None:
    # Given the declared families and the sample names each may use
    types = declared_types(exposition)
    allowed: set[str] = set()
    for name, kind in types.items():
        if kind == "histogram":
            allowed |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            allowed.add(name)
        created = created_name(name, kind)
        if created:
            allowed.add(created)
    # Then no sample goes by another name
    assert sample_names(exposition) - allowed == set()


def test_promtool_accepts_the_exposition(exposition: str) -> None:
    promtool = require_promtool()
    # When promtool lints a process's exposition
    result = promtool_check(promtool, exposition)
    # Then it has nothing to say
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_promtool_accepts_the_worker_pods_multiprocess_exposition(
        multiprocess_exposition: str) -> None:
    promtool = require_promtool()
    # Given what a worker pod serves (multiprocess mode), with every metric touched
    assert set(declared_types(multiprocess_exposition)) == {
        exposed_name(m) for m in metric_objects(Metrics()).values()}
    # When promtool lints it
    result = promtool_check(promtool, multiprocess_exposition)
    # Then it has nothing to say
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
