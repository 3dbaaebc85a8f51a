"""What the benchmarks share: moto's S3 server in a process of its own, and measuring a piece
of work in a fresh child process (its wall and CPU seconds, its peak RSS)."""

from __future__ import annotations

import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_MOTO_SERVER = """\
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
server.stop()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """moto's S3 server in a process of its own, stopped by closing its stdin.

    Its request log goes to ``log_path``.
    """

    def __init__(self, log_path: Path) -> None:
        port = _free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", _MOTO_SERVER, str(port)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=log, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError("moto's S3 server did not start")

    def cpu_s(self) -> float:
        """CPU seconds the server process has used so far (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _cpu_s() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_in_child(target: Callable[..., None], *args: object) -> dict[str, Any]:
    """Run ``target(conn, *args)`` in a fresh interpreter and return the dict it sends."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(sender, *args))
    proc.start()
    sender.close()
    try:
        result: dict[str, Any] = receiver.recv()
    except EOFError:
        proc.join()
        raise RuntimeError(f"{target.__name__} failed (exit status {proc.exitcode})") from None
    proc.join()
    return result


def timed(work: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    rss_before = _peak_rss_mib()
    (user0, sys0), wall0 = _cpu_s(), time.perf_counter()
    value = work()
    wall_s = time.perf_counter() - wall0
    user1, sys1 = _cpu_s()
    return value, {"wall_s": wall_s, "user_s": user1 - user0, "sys_s": sys1 - sys0,
                   "cpu_s": user1 - user0 + sys1 - sys0, "rss_before_mib": rss_before,
                   "peak_rss_mib": _peak_rss_mib()}
