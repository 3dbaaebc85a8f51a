"""Fixtures that build real backends: moto's S3 server over HTTP and the Redis server at
``BUCKETBRIDGE_REDIS_URL`` (database 15 of the local server by default, flushed per test).

The ``services`` fixture's clock is a ``FrozenClock``: time passes only where a test moves it.
``invoke_cli`` runs the CLI in this process; ``run_cli`` as a real process, where only a
process shows what is tested."""

from __future__ import annotations

import gc
import gzip
import logging
import os
import socket
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from producers.cli import cli
from shared.clock import FrozenClock
from shared.logconfig import NOISY_LOGGERS
from shared.metrics import Metrics
from shared.services import Services
from shared.settings import Settings
from shared.store.s3 import S3, make_client
from shared.store.sites import SiteConfig
from tests.motoserver import tune_moto

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow(seconds)`` first, longest first (a bare ``slow`` counts as 5 s):
    with ``--maxschedchunk 1`` (scripts/test) pytest-xdist gives each process two tests to
    start with, then one as each ends, so the long process-killing tests start early and the
    run does not end waiting on one."""
    def expected_s(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        if marker is None:
            return 0.0
        return float(marker.args[0]) if marker.args else 5.0

    items.sort(key=expected_s, reverse=True)  # stable: the rest keep their order


def pytest_collection_finish() -> None:
    """What collection left (pytest's items, every imported module) lives to the end of the
    run: out of the garbage collector's sight, its full collections during the data-heavy
    tests cost a fraction."""
    gc.freeze()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    tune_moto()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL_STS"] = endpoint
    yield endpoint
    server.stop()


def worker_redis_url(url: str, worker: str | None) -> str:
    """The Redis database of one test process: ``url``'s own for the first (or only) one;
    under pytest-xdist, worker ``gwN`` takes the Nth database below it, so parallel workers
    never flush each other's keys."""
    if not worker or not worker.startswith("gw") or worker == "gw0":
        return url
    parts = urllib.parse.urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    offset = int(worker[2:])
    db = base - offset if base - offset >= 0 else base + offset
    return urllib.parse.urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = worker_redis_url(os.environ.get("BUCKETBRIDGE_REDIS_URL", DEFAULT_TEST_REDIS_URL),
                           os.environ.get("PYTEST_XDIST_WORKER"))
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:  # a missing Redis is a broken test set-up, not a skip
        pytest.fail(f"tests need a Redis at {url}: {exc}")
    return url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def s3(s3_endpoint: str) -> S3:
    return S3(make_client(s3_endpoint))


def _bucket(s3: S3, kind: str) -> str:
    name = f"{kind}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


@pytest.fixture
def store_bucket(s3: S3) -> str:
    return _bucket(s3, "store")


@pytest.fixture
def import_bucket(s3: S3) -> str:
    return _bucket(s3, "imports")


@pytest.fixture
def export_bucket(s3: S3) -> str:
    return _bucket(s3, "export")


@pytest.fixture
def settings(redis_url: str, store_bucket: str, s3_endpoint: str) -> Settings:
    return Settings(redis_url=redis_url, store_bucket=store_bucket, s3_endpoint_url=s3_endpoint,
                    import_budget_s=60, export_budget_s=60)


@pytest.fixture
def services(settings: Settings, redis_client: redis.Redis, s3: S3) -> Services:
    return Services.build(settings, clock=FrozenClock(), metrics=Metrics(),
                          redis_client=redis_client, s3=s3)


@pytest.fixture
def site(services: Services, import_bucket: str, export_bucket: str) -> SiteConfig:
    config = SiteConfig(site_id="acme", import_bucket=import_bucket,
                        base_filename="accounts.csv", export_bucket=export_bucket)
    services.sites.create(config)
    return config


@dataclass
class Env:
    """The environment a bucketbridge subprocess sees in tests."""

    settings: Settings
    endpoint: str

    def as_dict(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BUCKETBRIDGE_",
                                                                         "PYTEST_"))}
        env.update({
            "BUCKETBRIDGE_REDIS_URL": self.settings.redis_url,
            "BUCKETBRIDGE_STORE_BUCKET": self.settings.store_bucket,
            "BUCKETBRIDGE_IMPORT_BUDGET_S": str(self.settings.import_budget_s),
            "BUCKETBRIDGE_EXPORT_BUDGET_S": str(self.settings.export_budget_s),
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ENDPOINT_URL_STS": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(overrides)
        return env


@pytest.fixture
def env(settings: Settings, s3_endpoint: str) -> Env:
    return Env(settings=settings, endpoint=s3_endpoint)


def run_cli(env: Env, *args: str, timeout_s: float = 60, input_text: str | None = None,
            **overrides: str) -> subprocess.CompletedProcess[str]:
    """Run ``bucketbridge ARGS`` as a real process: for what only a process shows (signals,
    kills, start-up, the exact bytes of a whole run)."""
    return subprocess.run([sys.executable, "-m", "producers", *args], env=env.as_dict(**overrides),
                          capture_output=True, text=True, timeout=timeout_s, cwd=REPO,
                          input=input_text, check=False)


@dataclass
class CliResult:
    """What ``invoke_cli`` saw, shaped like a finished process."""

    returncode: int
    stdout: str
    stderr: str
    stdout_bytes: bytes


def invoke_cli(env: Env, *args: str, input_text: str | None = "",
               **overrides: str) -> CliResult:
    """Run ``bucketbridge ARGS`` in this process (click's ``CliRunner``), in the environment a
    process would see; much faster than a process for checks of the CLI's own logic.  An
    exception the CLI did not turn into its one-line error fails the test, as the traceback of
    a real process would."""
    environ = env.as_dict(**overrides)
    isolated: dict[str, str | None] = {k: None for k in os.environ if k not in environ}
    isolated.update(environ)
    # The CLI configures logging for its process; keep the test process's as it was.
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in NOISY_LOGGERS)]
    levels = [logger.level for logger in loggers]
    try:
        result = CliRunner().invoke(cli, list(args), input=input_text, env=isolated,
                                    prog_name="bucketbridge")
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr,
                     stdout_bytes=result.stdout_bytes)


def gz(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"))
