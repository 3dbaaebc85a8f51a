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
from shared.store.s3 import S3
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


@pytest.mark.parametrize("args", [("status", "--help"), ("enqueue", "--help"),
                                  ("enqueue", "scan", "--help"), ("enqueue", "export", "--help")])
def test_commands_that_use_the_clients_load_them_only_when_they_run(args: tuple[str, ...]) -> None:
    # Their help (and their usage errors) cost a few hundredths of a second, not 0.3-0.5 s
    loaded = imported_modules(*args)
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


# -- every user mistake: one line, exit 2, no traceback, no secret ----------------------------


def one_line_usage_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bucketbridge: error: "), lines[0]
    return lines[0].removeprefix("bucketbridge: error: ")


@pytest.mark.parametrize(("args", "message"), [
    (("sites", "add", "acme", "--base-filename", "a.csv"),
     "missing option '--import-bucket' (see: bucketbridge sites add --help)"),
    (("nosuch",), "no such command 'nosuch' (see: bucketbridge --help)"),
    (("sites", "show", "acme", "--bogus"),
     "no such option '--bogus' (see: bucketbridge sites show --help)"),
    (("dlq", "list", "--actor", "nope"),
     "invalid value for '--actor': 'nope' is not one of 'scan', 'export' "
     "(see: bucketbridge dlq list --help)"),
])
def test_clicks_usage_errors_are_one_line_with_the_help_to_read(
        env: Env, args: tuple[str, ...], message: str) -> None:
    assert one_line_usage_error(run_cli(env, *args)) == message


@pytest.mark.parametrize(("args", "message"), [
    (("drain", "--timeout", "nan"), "'nan' is not a finite number of seconds"),
    (("drain", "--timeout", "inf"), "'inf' is not a finite number of seconds"),
    (("drain", "--timeout", "-inf"), "'-inf' is not a finite number of seconds"),
    (("drain", "--timeout", "1e308"), "'1e308' is not between 0.1 and 604800 seconds"),
    (("drain", "--timeout", "0"), "'0' is not between 0.1 and 604800 seconds"),
    (("status", "acme", "--watch", "--interval", "nan"),
     "'nan' is not a finite number of seconds"),
    (("enqueue", "reexport", "acme", "--from", "1" + "0" * 30),
     "is not in the range 1<=x<=999999999999"),
])
def test_numeric_options_refuse_non_finite_and_out_of_range_values(
        env: Env, args: tuple[str, ...], message: str) -> None:
    assert message in one_line_usage_error(run_cli(env, *args))


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("BUCKETBRIDGE_REDIS_URL", "foo://admin:s3cr3t-pw@redis.internal:6379/0",
     "invalid BUCKETBRIDGE_REDIS_URL 'foo://****@redis.internal:6379/0': use "
     "redis://host:port/db, rediss://… or unix://…"),
    ("BUCKETBRIDGE_REDIS_URL", "redis://:s3cr3t-pw@127.0.0.1:99999/0",
     "invalid BUCKETBRIDGE_REDIS_URL 'redis://****@127.0.0.1:99999/0': the port must be a "
     "number from 1 to 65535"),
    ("BUCKETBRIDGE_REDIS_URL", "redis://127.0.0.1:6379/zero?password=s3cr3t-pw",
     "invalid BUCKETBRIDGE_REDIS_URL 'redis://127.0.0.1:6379/zero?password=****': the path "
     "must be a database number, like /0"),
    ("BUCKETBRIDGE_STORE_BUCKET", "Bad_Bucket",
     "invalid BUCKETBRIDGE_STORE_BUCKET 'Bad_Bucket': not an S3 bucket name"),
    ("BUCKETBRIDGE_IMPORT_BUDGET_S", "1" + "0" * 30,
     "BUCKETBRIDGE_IMPORT_BUDGET_S must be at most 86400, got 1" + "0" * 30),
])
def test_bad_settings_are_one_line_and_never_show_a_password(
        env: Env, variable: str, value: str, message: str) -> None:
    result = run_cli(env, "sites", "show", "acme", **{variable: value})
    assert one_line_usage_error(result) == message
    assert "s3cr3t" not in result.stderr + result.stdout


ESCAPE_KEY = "accounts-1\x1b]0;pwned\x07\x1b[2J.csv"


def test_control_characters_in_key_names_are_escaped_on_the_terminal_and_in_logs(
        env: Env, s3: S3, import_bucket: str) -> None:
    # Given a customer's files whose names hold an OSC escape (retitles a terminal) and a CSI
    # one (clears it): a bad one, then a good one, then a good one whose cells hold escapes
    s3.put(import_bucket, ESCAPE_KEY, b"not,a\nheader\x00")
    s3.put(import_bucket, "accounts-2\x1b[31m.csv",
           b"Identity,Timestamp,Event\n\x1b]0;t\x07ann,1700000000,\x1b[2JSigned\n")
    # When an operator adds the site, and a worker imports them with -v logging
    added = run_cli(env, "sites", "add", "acme", "--import-bucket", import_bucket,
                    "--base-filename", "accounts.csv", "--yes", COLUMNS="200")
    assert added.returncode == 0, added.stderr
    assert run_cli(env, "enqueue", "scan", "acme").returncode == 0
    drained = run_cli(env, "-v", "drain", "--timeout", "60")
    assert drained.returncode == 0, drained.stderr
    status = run_cli(env, "status", "acme")
    # Then no escape reached the terminal or the log, and the names are shown escaped
    everything = added.stdout + added.stderr + drained.stderr + status.stdout + status.stderr
    assert "\x1b" not in everything and "\x07" not in everything
    assert "accounts-1\\x1b]0;pwned\\x07\\x1b[2J.csv cannot be imported" in added.stderr
    assert "First rows of accounts-2\\x1b[31m.csv" in added.stdout
    assert "\\x1b[2JSigned" in added.stdout  # a cell of the preview
    assert "file=accounts-1\\x1b]0;pwned\\x07\\x1b[2J.csv" in drained.stderr  # a log line
