"""``bucketbridge worker [dramatiq options]``: run the fleet's worker processes.

Execs dramatiq's CLI (``python -m workers``, so its main process gets signals directly) on the
entry module ``workers.app``, with the metrics endpoint as a fork process, and a Prometheus
multiprocess directory of its own: each worker on a host serves its own processes' metrics,
complete, and never touches another's files.

- ``PROMETHEUS_MULTIPROC_DIR`` unset: a new private directory,
  ``$TMPDIR/bucketbridge-metrics-<pid>``; those of workers no longer running are removed.
- set (a pod's emptyDir): that directory, emptied of the files of processes that are gone; a
  file of a live process means another worker uses it, which is refused.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import click

from producers.context import AppContext
from shared.errors import UserError
from shared.preflight import check_environment

pass_app = click.make_pass_decorator(AppContext)

ENTRY_MODULE = "workers.app"
EXPOSITION = "workers.exposition:serve"
PRIVATE_PREFIX = "bucketbridge-metrics-"
# prometheus-client's per-process files: counter_1234.db, gauge_livesum_1234.db, …
_PID_FILE = re.compile(r"_(\d+)\.db$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours from a former life in this container: stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def prepare_shared_dir(directory: Path) -> Path:
    """``directory``, emptied of the files of processes that are gone; ``UserError`` if a
    live process still writes there (two workers must not share one)."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        match = _PID_FILE.search(entry.name)
        if match and _alive(int(match.group(1))):
            raise UserError(f"PROMETHEUS_MULTIPROC_DIR {directory} is in use by running process "
                            f"{match.group(1)}: give each worker a directory of its own (or "
                            "leave the variable unset)")
    for entry in directory.iterdir():
        _remove(entry)
    return directory


def prepare_private_dir(parent: Path | None = None) -> Path:
    """A new directory for this worker; leftovers of workers that are gone are removed."""
    parent = parent or Path(tempfile.gettempdir())
    for old in parent.glob(f"{PRIVATE_PREFIX}*"):
        suffix = old.name.removeprefix(PRIVATE_PREFIX)
        if suffix.isdigit() and not _alive(int(suffix)):
            _remove(old)
    own = parent / f"{PRIVATE_PREFIX}{os.getpid()}"  # exec keeps our pid: dramatiq's main
    _remove(own)
    own.mkdir(mode=0o700)
    return own


def prepare_multiprocess_dir(path: str | None) -> str:
    return str(prepare_shared_dir(Path(path)) if path else prepare_private_dir())


def dramatiq_argv(extra: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "workers", ENTRY_MODULE, "--fork-function", EXPOSITION,
            *extra]


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("dramatiq_options", nargs=-1, type=click.UNPROCESSED)
@pass_app
def worker(app: AppContext, dramatiq_options: tuple[str, ...]) -> None:
    """Run worker processes; options go to dramatiq, such as --processes 2 --threads 4."""
    # Before any process starts: an environment that would void exactly-once is refused.  (Its
    # own clients: the worker's metrics must not exist before its multiprocess directory does.)
    check_environment(app.settings, "worker")
    env = dict(os.environ)
    env["PROMETHEUS_MULTIPROC_DIR"] = prepare_multiprocess_dir(
        env.get("PROMETHEUS_MULTIPROC_DIR"))
    argv = dramatiq_argv(dramatiq_options)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)
