"""The CLI as a process: the one-line error and exit status contract, and a start-up that loads
only what the command needs."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from producers.cli import COMMANDS, cli
from tests.conftest import REPO, Env, run_cli

pytestmark = pytest.mark.timeout(60)

HEAVY = ("boto3", "botocore", "redis", "dramatiq", "prometheus_client", "rich", "moto")


def imported_modules(*args: str) -> set[str]:
    """The top-level packages ``bucketbridge ARGS`` imported, from ``-X importtime``."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "producers", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=30, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip().split(".")[0]
            for line in done.stderr.splitlines() if line.startswith("import time:")}


def test_help_loads_no_command_and_no_client_library() -> None:
    loaded = imported_modules("--help")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_a_command_loads_only_its_own_module() -> None:
    loaded = imported_modules("files", "--help")
    assert not loaded & {"boto3", "botocore", "redis", "dramatiq", "moto"}, loaded


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_summaries_are_the_commands_own(name: str) -> None:
    # The summaries --help shows without loading a command are the command's first help line
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert COMMANDS[name][1] == command.get_short_help_str(limit=1000)


def test_a_user_mistake_is_one_line_and_status_2_in_a_real_process(env: Env) -> None:
    result = run_cli(env, "sites", "show", "Not_A_Site")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "bucketbridge: error: invalid site id 'Not_A_Site': use 1-40 lowercase letters, "
        "digits and dashes, starting and ending with a letter or digit"]
    assert result.stdout == ""


def test_a_failure_that_is_not_the_users_is_status_1_in_a_real_process(env: Env) -> None:
    result = run_cli(env, "enqueue", "scan", "acme",
                     BUCKETBRIDGE_REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode in (1, 2)  # no such site (2) if S3 answers first, else Redis (1)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
