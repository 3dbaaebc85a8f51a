"""``bucketbridge check``: the preflight refuses an environment that would void the guarantees."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis

from shared.clock import FrozenClock, SystemClock
from shared.errors import EnvironmentRefused
from shared.preflight import clock_skew, conditional_writes, redis_eviction, require_guarantees
from shared.store.s3 import S3
from tests.conftest import Env, free_port, invoke_cli, run_cli

pytestmark = pytest.mark.timeout(60)


def test_check_passes_on_moto_and_a_noeviction_redis(env: Env) -> None:
    result = invoke_cli(env, "check", "--json")
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == ["conditional-writes", "redis-eviction",
                                                     "clock"]


def test_the_probe_object_is_removed(env: Env, s3: S3) -> None:
    assert invoke_cli(env, "check").returncode == 0
    assert list(s3.list(env.settings.store_bucket, "preflight/")) == []


class _IgnoresConditions(S3):
    """An S3-compatible store that accepts If-None-Match and If-Match and ignores them."""

    def put(self, bucket: str, key: str, body: Any, **kwargs: Any) -> str:
        kwargs.pop("if_none_match", None)
        kwargs.pop("if_match", None)
        return super().put(bucket, key, body, **kwargs)


def test_a_store_that_ignores_conditional_writes_is_refused(s3: S3, store_bucket: str) -> None:
    found = conditional_writes(_IgnoresConditions(s3.client), store_bucket)
    assert not found.ok
    assert "accepted a second create of one key with If-None-Match: *" in found.detail


def test_a_clock_far_from_the_stores_is_refused(s3: S3, store_bucket: str) -> None:
    assert clock_skew(s3, store_bucket, SystemClock()).ok
    off = clock_skew(s3, store_bucket, FrozenClock(time.time() - 600))
    assert (not off.ok and "600 s away from the store's" in off.detail) or \
        "away from the store's" in off.detail


@pytest.fixture
def evicting_redis(tmp_path: Any) -> Iterator[str]:
    """A private redis-server configured to evict keys under memory pressure."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("the tests need redis-server on PATH")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path),
                             "--maxmemory-policy", "allkeys-lru"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.RedisError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_evicting_redis_is_refused_with_one_line_and_status_1(
        env: Env, evicting_redis: str) -> None:
    result = invoke_cli(env, "check", BUCKETBRIDGE_REDIS_URL=evicting_redis)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "bucketbridge: error: redis-eviction: Redis maxmemory-policy is allkeys-lru: it may "
        "evict queued messages and leases; set it to noeviction"]
    assert redis_eviction(redis.Redis.from_url(evicting_redis)).ok is False


def test_an_unreachable_redis_fails_the_check(env: Env) -> None:
    result = invoke_cli(env, "check", "--json", BUCKETBRIDGE_REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 1
    checks = {c["name"]: c for c in orjson.loads(result.stdout)["checks"]}
    assert checks["redis-eviction"]["ok"] is False
    assert checks["redis-eviction"]["detail"].startswith("Redis: ")
    assert checks["conditional-writes"]["ok"] is True


# -- the same checks at start-up of the fleet's processes -------------------------------------


@pytest.mark.parametrize("command", [("worker", "--processes", "1"), ("scheduler",)])
def test_the_worker_and_the_scheduler_refuse_to_start_on_an_evicting_redis(
        env: Env, evicting_redis: str, command: tuple[str, ...]) -> None:
    # When the fleet's long-running process starts where Redis may evict
    started = time.monotonic()
    result = run_cli(env, *command, timeout_s=60, BUCKETBRIDGE_REDIS_URL=evicting_redis,
                     BUCKETBRIDGE_METRICS_PORT=str(free_port()))
    # Then it stops at once with one line saying why, and nothing ran
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"bucketbridge: error: the {command[0]} refuses to start: redis-eviction: Redis "
        "maxmemory-policy is allkeys-lru: it may evict queued messages and leases; set it to "
        "noeviction"]
    assert time.monotonic() - started < 30
    assert redis.Redis.from_url(evicting_redis).keys("*") == []  # no queue, no slot marker


def test_a_store_ignoring_conditional_writes_refuses_the_start(
        s3: S3, store_bucket: str, redis_client: redis.Redis) -> None:
    with pytest.raises(EnvironmentRefused) as caught:
        require_guarantees(_IgnoresConditions(s3.client), store_bucket, redis_client,
                           SystemClock(), "listener")
    assert str(caught.value).startswith("the listener refuses to start: conditional-writes: ")
    assert "\n" not in str(caught.value)


def test_the_start_up_check_passes_on_moto_and_the_test_redis(
        s3: S3, store_bucket: str, redis_client: redis.Redis) -> None:
    checks = require_guarantees(s3, store_bucket, redis_client, SystemClock(), "worker")
    assert [c.ok for c in checks] == [True, True, True]
