"""Real processes for the scrape test: bucketbridge's worker and scheduler, a Prometheus server,
and what the test reads from them (``/metrics`` text, Prometheus's HTTP API, dramatiq's Redis
keys).  Every process runs in its own session and is ended by its process group id."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from shared.fleet.messages import QUEUES
from tests.conftest import REPO

HTTP_TIMEOUT_S = 5.0


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str,
               diagnostics: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n"
                                 f"{diagnostics()}")
        time.sleep(0.2)


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
        body: bytes = response.read()
        return body


# -- processes -------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 4000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} (exit {self.popen.poll()}) ---\n{text[-chars:]}"

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL to whatever is left of it."""
        pgid = self.popen.pid  # its own session: the group id is its pid
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(pgid, signal.SIGTERM)
            self.popen.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        if self.popen.poll() is None:
            self.popen.wait(timeout=10)


@dataclass
class Processes:
    logs: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(argv, env=env, cwd=REPO, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        proc = Proc(name, popen, log)
        self.started.append(proc)
        return proc

    def diagnostics(self) -> str:
        return "\n".join(p.tail() for p in self.started)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()


# -- /metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scrape:
    """A parsed exposition: sample name -> [(labels, value)]."""

    text: str
    samples: dict[str, list[tuple[dict[str, str], float]]]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples.setdefault(s.name, []).append((dict(s.labels), s.value))
        return cls(text, samples)

    @classmethod
    def of(cls, port: int) -> Scrape:
        return cls.parse(http_get(f"http://127.0.0.1:{port}/metrics").decode("utf-8"))

    def total(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
        return sum(v for have, v in self.samples.get(name, [])
                   if all(have.get(k) == want for k, want in labels.items()))

    def has(self, name: str, **labels: str) -> bool:
        return any(all(have.get(k) == want for k, want in labels.items())
                   for have, _ in self.samples.get(name, []))

    def by(self, name: str, label: str, **labels: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for have, v in self.samples.get(name, []):
            if all(have.get(k) == want for k, want in labels.items()):
                out[have.get(label, "")] = out.get(have.get(label, ""), 0.0) + v
        return out


def per_process_scrapes(multiproc_dir: Path, scratch: Path) -> dict[str, Scrape]:
    """What each worker process alone contributed, from its own files in the multiprocess
    directory (``<kind>_<pid>.db``)."""
    by_pid: dict[str, list[Path]] = {}
    for path in multiproc_dir.glob("*.db"):
        by_pid.setdefault(path.stem.rsplit("_", 1)[1], []).append(path)
    out = {}
    for pid, files in by_pid.items():
        own = scratch / pid
        own.mkdir(parents=True)
        for path in files:
            shutil.copy(path, own / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(own))
        out[pid] = Scrape.parse(generate_latest(registry).decode("utf-8"))
    return out


# -- the broker's Redis keys ------------------------------------------------------------------


def broker_idle(client: redis.Redis, namespace: str = "dramatiq") -> bool:
    """No message waits (ready or delayed) and none is fetched but unacknowledged."""
    for queue in QUEUES:
        if client.llen(f"{namespace}:{queue}") or client.llen(f"{namespace}:{queue}.DQ"):
            return False
    return not any(client.scard(key) for key in client.scan_iter(f"{namespace}:__acks__.*"))


# -- Prometheus -------------------------------------------------------------------------------


@dataclass
class PrometheusServer:
    binary: str
    workdir: Path
    port: int
    proc: Proc | None = None

    def write_config(self, targets: dict[str, tuple[str, int]], rule_files: list[Path]) -> Path:
        """Scrape every second; ``targets`` maps job name to (component, port) as the
        PodMonitor would label them."""
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [
                {"job_name": job, "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"component": component}}]}
                for job, (component, port) in targets.items()],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start(self, processes: Processes, config: Path) -> None:
        self.proc = processes.start("prometheus", [
            self.binary, f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
        ], dict(os.environ))

    def ready(self) -> bool:
        try:
            return b"Ready" in http_get(f"http://127.0.0.1:{self.port}/-/ready")
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        body = json.loads(http_get(f"http://127.0.0.1:{self.port}/api/v1/{path}?{query}"))
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data["resultType"])
        result: list[dict[str, Any]] = data["result"]
        return result

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def active_alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    def rule_health(self) -> Iterator[tuple[str, str, str]]:
        for group in self.api("rules")["groups"]:
            for rule in group["rules"]:
                yield rule["name"], rule["health"], rule.get("lastError", "")


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    return [v for v in (float(r["value"][1]) for r in result) if math.isfinite(v)]
