"""Fixtures of the monitoring checks: Prometheus's own tools (Debian package ``prometheus``).

A missing tool fails the tests with what to install, unless ``BUCKETBRIDGE_SKIP_PROMETHEUS=1``
says to skip them.
"""

from __future__ import annotations

import os
import shutil

import pytest

SKIP_ENV = "BUCKETBRIDGE_SKIP_PROMETHEUS"


def prometheus_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(f"{name} is not on PATH and {SKIP_ENV}=1")
        pytest.fail(f"{name} is not on PATH: install it (Debian: apt-get install -y prometheus) "
                    f"or set {SKIP_ENV}=1 to skip the checks that need it")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return prometheus_tool("promtool")


@pytest.fixture(scope="session")
def prometheus() -> str:
    return prometheus_tool("prometheus")
