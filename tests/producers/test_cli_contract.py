"""The CLI as a process: the one-line error and exit status contract, and a start-up that loads
only what the command needs."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import click
import pytest
from click.testing import CliRunner

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


def _commands(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not isinstance(command, click.Group):
        return [path]
    ctx = click.Context(command)
    out = [path]
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        assert sub is not None
        out += _commands(sub, (*path, name))
    return out


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None
        command = found
    return command


def test_every_option_of_every_command_has_help_text() -> None:
    missing = [(" ".join(path), opt.opts) for path in _commands(cli)
               for opt in _command(path).params
               if isinstance(opt, click.Option) and not (opt.help or "").strip()]
    assert missing == []


@pytest.mark.parametrize("group", ["sites", "enqueue", "dlq", "files"])
def test_group_help_shows_each_commands_whole_summary(group: str) -> None:
    # Given a narrow terminal (click cuts summaries to fit, with "…", unless told otherwise)
    result = CliRunner().invoke(cli, [group, "--help"], terminal_width=60)
    assert result.exit_code == 0, result.output
    command = _command((group,))
    assert isinstance(command, click.Group)
    text = "".join(result.output.split())  # wrapped lines joined (also at hyphens)
    for name in command.list_commands(click.Context(command)):
        sub = command.get_command(click.Context(command), name)
        assert sub is not None
        summary = sub.get_short_help_str(limit=1000)
        assert "".join(summary.split()) in text, (name, summary, result.output)
    assert "…" not in result.output


def test_version_is_the_packages(env: Env) -> None:
    result = run_cli(env, "--version")
    assert result.returncode == 0
    assert result.stdout == f"bucketbridge {metadata.version('bucketbridge')}\n"
