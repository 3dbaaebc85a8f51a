"""Fixtures of the integration tests: real worker, scheduler and listener processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.integration.test_invariants import Processes


@pytest.fixture
def processes(env: Env, tmp_path: Path) -> Iterator[Processes]:
    """Processes started by a test, all killed when it ends."""
    procs = Processes(env, tmp_path)
    try:
        yield procs
    finally:
        procs.kill_all()
