"""``bucketbridge worker [dramatiq options]``: run the fleet's worker processes.

Execs the real ``dramatiq`` CLI (so its parent process gets signals directly) on the entry
module ``workers.app``, with the metrics endpoint as a fork process and an empty Prometheus
multiprocess directory shared by all worker processes.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import click

from producers.context import AppContext

pass_app = click.make_pass_decorator(AppContext)

ENTRY_MODULE = "workers.app"
EXPOSITION = "workers.exposition:serve"


def prepare_multiprocess_dir(path: str | None) -> str:
    """An empty directory for prometheus-client's per-process files (stale ones would count)."""
    directory = path or os.path.join(tempfile.gettempdir(), "bucketbridge-metrics")
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            full = os.path.join(directory, name)
            if os.path.isdir(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
    os.makedirs(directory, exist_ok=True)
    return directory


def dramatiq_argv(extra: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "dramatiq", ENTRY_MODULE, "--fork-function", EXPOSITION,
            *extra]


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("dramatiq_options", nargs=-1, type=click.UNPROCESSED)
@pass_app
def worker(app: AppContext, dramatiq_options: tuple[str, ...]) -> None:
    """Run worker processes; options go to dramatiq, such as --processes 2 --threads 4."""
    env = dict(os.environ)
    env["PROMETHEUS_MULTIPROC_DIR"] = prepare_multiprocess_dir(
        env.get("PROMETHEUS_MULTIPROC_DIR"))
    argv = dramatiq_argv(dramatiq_options)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)
