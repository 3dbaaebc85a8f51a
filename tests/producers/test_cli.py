"""The ``bucketbridge`` CLI: each command's happy path and its usage errors, run in this process
(click's runner) where the CLI's own logic is the point, and as a real process where only a
process shows it (the demo, and the contract of a whole run).

The operator contract: exit 0 on success, 2 on bad usage or input, 1 on other failures; an
error is one line on stderr (``bucketbridge: error: …``), never a traceback for a user mistake.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from typing import Any

import orjson
import pytest
import redis

from shared.services import Services
from shared.store.revisions import revision_key
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.conftest import REPO, CliResult, Env, invoke_cli, run_cli

pytestmark = pytest.mark.timeout(150)

GOOD_CSV = (b"Identity,Timestamp,Event,Prop:Plan\n"
            b"alice,1704067200,Signed Up,pro\n"
            b"bob,1704070800,Paid,\n")
NO_IDENTITY_CSV = b"Name,Timestamp,Event\nalice,1704067200,Signed Up\n"
PREVIEW_HEADER = ["Row", "Kind", "Identity", "Time (UTC)", "Event / Alias", "Properties"]
SITE_ID_RULE = ("use 1-40 lowercase letters, digits and dashes, starting and ending with a "
                "letter or digit")


def bb(env: Env, *args: str, input_text: str = "", **overrides: str) -> CliResult:
    """``bucketbridge ARGS`` in this process, stdin never a terminal, a wide console."""
    return invoke_cli(env, *args, input_text=input_text, COLUMNS="200", **overrides)


def bb_process(env: Env, *args: str, timeout_s: float = 60,
               **overrides: str) -> subprocess.CompletedProcess[str]:
    """``bucketbridge ARGS`` as a real process, stdin a pipe, a wide UTF-8 console."""
    return run_cli(env, *args, timeout_s=timeout_s, input_text="", COLUMNS="200",
                   PYTHONIOENCODING="utf-8", **overrides)


Result = CliResult | subprocess.CompletedProcess[str]


def assert_error(result: Result, code: int, message: str) -> None:
    """Exactly one line on stderr, the documented prefix and message, the documented status."""
    assert result.stderr.splitlines() == [f"bucketbridge: error: {message}"], result.stderr
    assert result.returncode == code


def assert_click_usage_error(result: Result, usage: str) -> None:
    """click's usage errors follow the contract too: one line, the ``--help`` to read."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bucketbridge: error: "), result.stderr
    assert lines[0].endswith(f"(see: {usage} --help)"), result.stderr


def table_rows(text: str) -> list[list[str]]:
    """The rows of the tab-separated tables the CLI prints on a pipe (a header row first)."""
    return [line.split("\t") for line in text.splitlines() if "\t" in line]


def box_rows(text: str) -> list[list[str]]:
    """The body rows of rich tables in ``text``, as lists of stripped cells."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in text.splitlines() if line.startswith("│")]


def status_rows(text: str) -> dict[str, str]:
    return {row[0]: row[1] for row in table_rows(text)}


def queued(client: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """The messages waiting in dramatiq's Redis queue ``queue``, oldest first."""
    out = []
    for redis_id in client.lrange(f"dramatiq:{queue}", 0, -1):
        raw = client.hget(f"dramatiq:{queue}.msgs", redis_id)
        assert raw is not None
        out.append(orjson.loads(raw))
    return out


def make_site(services: Services, site_id: str, import_bucket: str, *,
              export_bucket: str | None = None, paused: bool = False) -> SiteConfig:
    config = SiteConfig(site_id=site_id, import_bucket=import_bucket,
                        base_filename="accounts.csv", export_bucket=export_bucket, paused=paused)
    services.sites.create(config)
    return config


# -- sites add -----------------------------------------------------------------------------------


def test_sites_add_with_yes_previews_the_first_file_and_activates_the_site(
        env: Env, services: Services, s3: S3, import_bucket: str, export_bucket: str) -> None:
    # Given a bucket with two matching files and one that does not match
    s3.put(import_bucket, "accounts-1.csv", GOOD_CSV)
    s3.put(import_bucket, "accounts-2.csv", GOOD_CSV)
    s3.put(import_bucket, "other.csv", GOOD_CSV)
    # When the site is added with --yes
    result = bb(env, "sites", "add", "acme", "--import-bucket", import_bucket,
                "--base-filename", "accounts.csv", "--export-bucket", export_bucket, "--yes")
    # Then the first file's rows are previewed, and the site is registered and active
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "First rows of accounts-1.csv"
    assert table_rows(result.stdout) == [
        PREVIEW_HEADER,
        ["1", "event", "alice", "2024-01-01 00:00:00", "Signed Up", "Plan=pro"],
        ["2", "event", "bob", "2024-01-01 01:00:00", "Paid", ""],
    ]
    assert "Columns: Identity, Timestamp, Event, Prop:Plan" in lines
    assert (f"2 file(s) ({2 * len(GOOD_CSV)} bytes) waiting in s3://{import_bucket}; files are "
            "imported in byte order of their names.") in lines
    assert lines[-1] == ("Site acme is active; the scheduler publishes its first scan on its "
                         "next tick (or run: bucketbridge enqueue scan acme).")
    assert services.sites.get("acme") == SiteConfig(
        site_id="acme", import_bucket=import_bucket, base_filename="accounts.csv",
        export_bucket=export_bucket)


def test_sites_add_without_yes_refuses_when_stdin_is_not_a_terminal(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    # Given a valid bucket and file
    s3.put(import_bucket, "accounts-1.csv", GOOD_CSV)
    # When the site is added without --yes and "y" arrives on a pipe, not a terminal
    result = bb(env, "sites", "add", "acme", "--import-bucket", import_bucket,
                "--base-filename", "accounts.csv", input_text="y\n")
    # Then it refuses with one line and the site is not registered
    assert_error(result, 2, "confirmation needed: run in a terminal or pass --yes")
    assert "First rows of accounts-1.csv" in result.stdout
    assert not services.sites.exists("acme")


@pytest.mark.parametrize("site_id", ["Acme", "a_b", "a" * 41, "acme-"])
def test_sites_add_rejects_a_bad_site_id(
        env: Env, services: Services, s3: S3, import_bucket: str, site_id: str) -> None:
    # Given a valid bucket and file
    s3.put(import_bucket, "accounts-1.csv", GOOD_CSV)
    # When a site is added under an id that breaks the naming rule
    result = bb(env, "sites", "add", site_id, "--import-bucket", import_bucket,
                "--base-filename", "accounts.csv", "--yes")
    # Then it fails with one line naming the id and the rule
    assert_error(result, 2, f"invalid site id {site_id!r}: {SITE_ID_RULE}")
    assert list(services.sites.site_ids()) == []


def test_sites_add_rejects_a_site_id_that_looks_like_an_option(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    # Given a valid bucket and file
    s3.put(import_bucket, "accounts-1.csv", GOOD_CSV)
    common = ["--import-bucket", import_bucket, "--base-filename", "accounts.csv", "--yes"]
    # When "-x" is given where the site goes, it is an unknown option for click
    as_option = bb(env, "sites", "add", "-x", *common)
    # And when it is passed as a value after "--", it is a bad site id
    as_value = bb(env, "sites", "add", *common, "--", "-x")
    # Then both are usage errors without a traceback
    assert_click_usage_error(as_option, "bucketbridge sites add")
    assert "-x" in as_option.stderr.splitlines()[-1]
    assert_error(as_value, 2, f"invalid site id '-x': {SITE_ID_RULE}")
    assert list(services.sites.site_ids()) == []


def test_sites_add_rejects_a_base_filename_that_is_not_csv(
        env: Env, s3: S3, import_bucket: str) -> None:
    # Given a file with another extension
    s3.put(import_bucket, "accounts-1.txt", GOOD_CSV)
    # When the base filename is not a .csv name
    result = bb(env, "sites", "add", "acme", "--import-bucket", import_bucket,
                "--base-filename", "accounts.txt", "--yes")
    # Then one line says why
    assert_error(result, 2, "base filename 'accounts.txt' must end in .csv or .csv.gz")


def test_sites_add_fails_when_the_import_bucket_is_missing(
        env: Env, services: Services) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:12]}"
    # When the import bucket does not exist
    result = bb(env, "sites", "add", "acme", "--import-bucket", bucket,
                "--base-filename", "accounts.csv", "--yes")
    # Then one line names the bucket and nothing is registered
    assert_error(result, 2, f"bucket {bucket} does not exist")
    assert not services.sites.exists("acme")


def test_sites_add_fails_when_no_file_matches(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    # Given only files that do not match accounts*.csv
    s3.put(import_bucket, "other.csv", GOOD_CSV)
    s3.put(import_bucket, "sub/accounts-1.csv", GOOD_CSV)
    # When the site is added
    result = bb(env, "sites", "add", "acme", "--import-bucket", import_bucket,
                "--base-filename", "accounts.csv", "--yes")
    # Then one line says which files were looked for, where
    assert_error(result, 2, "no file matching accounts*.csv or accounts*.csv.gz in "
                            f"s3://{import_bucket} (pass --allow-empty to register the site "
                            "before its first upload)")
    assert not services.sites.exists("acme")


def test_sites_add_warns_of_a_bad_first_file_when_a_later_one_is_valid(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    # Given a first file (in byte order) without an Identity column and a good second one
    s3.put(import_bucket, "accounts-1.csv", NO_IDENTITY_CSV)
    s3.put(import_bucket, "accounts-2.csv", GOOD_CSV)
    # When the site is added
    result = bb(env, "sites", "add", "acme", "--import-bucket", import_bucket,
                "--base-filename", "accounts.csv", "--yes")
    # Then a warning names the file and the reason, the good file is previewed, the site added
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: accounts-1.csv cannot be imported: header has no Identity column (the fleet "
        "will move it to failed_imports/ with a report and go on with the next file)"]
    assert "First rows of accounts-2.csv" in result.stdout.splitlines()
    assert services.sites.exists("acme")


def test_sites_add_refuses_when_no_file_can_be_imported_unless_forced(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    # Given only a file without an Identity column
    s3.put(import_bucket, "accounts-1.csv", NO_IDENTITY_CSV)
    common = ["sites", "add", "acme", "--import-bucket", import_bucket, "--base-filename",
              "accounts.csv", "--yes"]
    # When the site is added, it is refused with one line naming the problem
    refused = bb(env, *common)
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[-1] == (
        "bucketbridge: error: none of the first 1 file(s) can be imported (accounts-1.csv: "
        "header has no Identity column): fix the files, or pass --force to go on anyway")
    assert not services.sites.exists("acme")
    # And with --force it is registered
    assert bb(env, *common, "--force").returncode == 0
    assert services.sites.exists("acme")


def test_sites_add_refuses_a_site_that_exists_already(
        env: Env, services: Services, s3: S3, import_bucket: str, export_bucket: str) -> None:
    # Given a registered site
    s3.put(import_bucket, "accounts-1.csv", GOOD_CSV)
    before = make_site(services, "acme", import_bucket)
    # When it is added again, with another configuration
    result = bb(env, "sites", "add", "acme", "--import-bucket", import_bucket,
                "--base-filename", "accounts.csv", "--export-bucket", export_bucket, "--yes")
    # Then it is refused and the registered configuration is unchanged
    assert_error(result, 2, "site acme exists already")
    assert services.sites.get("acme") == before


def test_sites_add_refuses_an_external_id_without_a_role(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    # Given a valid bucket and file
    s3.put(import_bucket, "accounts-1.csv", GOOD_CSV)
    # When --external-id is given without --role-arn
    result = bb(env, "sites", "add", "acme", "--import-bucket", import_bucket,
                "--base-filename", "accounts.csv", "--external-id", "x-123", "--yes")
    # Then one line says it goes with a role
    assert_error(result, 2, "--external-id goes with --role-arn")
    assert not services.sites.exists("acme")


def test_sites_add_without_a_required_option_is_a_click_usage_error(env: Env) -> None:
    # When --import-bucket is left out, click's own usage error answers
    result = bb(env, "sites", "add", "acme", "--base-filename", "accounts.csv", "--yes")
    assert_click_usage_error(result, "bucketbridge sites add")
    assert "--import-bucket" in result.stderr.splitlines()[-1]


# -- sites preview / list / show / pause / resume ------------------------------------------------


def test_sites_preview_shows_the_next_file(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    # Given a site with two waiting files
    s3.put(import_bucket, "accounts-2.csv", b"Identity,Alias\ncarol,caroline\n")
    s3.put(import_bucket, "accounts-1.csv", GOOD_CSV)
    make_site(services, "acme", import_bucket)
    # When it is previewed
    result = bb(env, "sites", "preview", "acme")
    # Then the first file in byte order is shown
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].strip() == "First rows of accounts-1.csv"
    assert table_rows(result.stdout) == [
        PREVIEW_HEADER,
        ["1", "event", "alice", "2024-01-01 00:00:00", "Signed Up", "Plan=pro"],
        ["2", "event", "bob", "2024-01-01 01:00:00", "Paid", ""],
    ]
    assert result.stdout.splitlines()[-1] == (
        f"2 file(s) ({len(GOOD_CSV) + 30} bytes) waiting in s3://{import_bucket}; files are "
        "imported in byte order of their names.")


@pytest.mark.parametrize("command", [["sites", "preview"], ["sites", "show"],
                                     ["sites", "pause"], ["sites", "resume"], ["status"]])
def test_site_commands_fail_for_an_unknown_site(env: Env, command: list[str]) -> None:
    # Given no site registered
    # When a command names a site
    result = bb(env, *command, "nope")
    # Then one line says there is no such site
    assert_error(result, 2, "no site 'nope'")


def test_sites_list_show_pause_resume(
        env: Env, services: Services, import_bucket: str, export_bucket: str) -> None:
    # Given two sites, one exporting
    make_site(services, "acme", import_bucket, export_bucket=export_bucket)
    make_site(services, "beta", import_bucket)
    # When one is paused
    paused = bb(env, "sites", "pause", "beta")
    listed = bb(env, "sites", "list")
    as_json = bb(env, "sites", "list", "--json")
    shown = bb(env, "sites", "show", "beta")
    status = bb(env, "status", "beta")
    # Then list, show and status say so
    assert (paused.returncode, paused.stdout, paused.stderr) == (0, "site beta paused\n", "")
    assert listed.returncode == 0, listed.stderr
    assert table_rows(listed.stdout) == [
        ["Site", "State", "Last scan", "Last export", "Backlog", "Export lag", "Last error"],
        ["acme", "active", "never", "never", "-", "-", "-"],
        ["beta", "paused", "never", "not configured", "-", "-", "-"],
    ]
    assert [(s["site"], s["state"], s["paused"]) for s in orjson.loads(as_json.stdout)] == [
        ("acme", "active", False), ("beta", "paused", True)]
    assert orjson.loads(shown.stdout) == {
        "site_id": "beta", "import_bucket": import_bucket, "base_filename": "accounts.csv",
        "export_bucket": None, "export_prefix": "", "role_arn": None, "external_id": None,
        "paused": True}
    assert status_rows(status.stdout)["state"] == "paused, waiting for first file"
    # When it is resumed
    resumed = bb(env, "sites", "resume", "beta")
    # Then it is active again
    assert (resumed.returncode, resumed.stdout, resumed.stderr) == (0, "site beta resumed\n", "")
    assert services.sites.get("beta").paused is False


# -- enqueue ---------------------------------------------------------------------------------------


def test_enqueue_scan_puts_one_scan_message_on_the_imports_queue(
        env: Env, services: Services, redis_client: redis.Redis, import_bucket: str) -> None:
    # Given a registered site
    make_site(services, "acme", import_bucket)
    # When a scan is enqueued by hand
    result = bb(env, "enqueue", "scan", "acme")
    # Then one scan message for the site waits in dramatiq:imports
    assert result.returncode == 0, result.stderr
    match = re.fullmatch(r"queued scan acme \(message ([0-9a-f-]{36})\)\n", result.stdout)
    assert match, result.stdout
    messages = queued(redis_client, "imports")
    assert [(m["actor_name"], m["args"], m["kwargs"], m["message_id"]) for m in messages] == [
        ("scan", ["acme"], {}, match.group(1))]


@pytest.mark.parametrize("command", [["enqueue", "scan", "acme"],
                                     ["enqueue", "export", "acme"],
                                     ["enqueue", "reexport", "acme", "--from", "1"]])
def test_enqueue_for_a_paused_site_is_refused_unless_even_if_paused(
        env: Env, services: Services, redis_client: redis.Redis, import_bucket: str,
        export_bucket: str, command: list[str]) -> None:
    # Given a paused, exporting site
    make_site(services, "acme", import_bucket, export_bucket=export_bucket, paused=True)
    # When a message is enqueued for it
    refused = bb(env, *command)
    # Then it is refused with one line saying why and what to do, and nothing is queued
    assert_error(refused, 2, "site acme is paused: its messages would do nothing (bucketbridge "
                             "sites resume, or pass --even-if-paused)")
    assert queued(redis_client, "imports") == queued(redis_client, "exports") == []


def test_enqueue_even_if_paused_queues_a_message_that_runs_for_the_paused_site(
        env: Env, services: Services, s3: S3, redis_client: redis.Redis,
        import_bucket: str) -> None:
    # Given a paused site with a file waiting
    s3.put(import_bucket, "accounts-1.csv", GOOD_CSV)
    make_site(services, "acme", import_bucket, paused=True)
    # When an operator enqueues a scan even if paused, and it is drained
    result = bb(env, "enqueue", "scan", "acme", "--even-if-paused", "--json")
    assert result.returncode == 0, result.stderr
    sent = orjson.loads(result.stdout)
    assert [(m["message_id"], m["kwargs"]) for m in queued(redis_client, "imports")] == [
        (sent["message_id"], {"even_if_paused": True})]
    assert (sent["actor"], sent["site"], sent["queue"]) == ("scan", "acme", "imports")
    assert bb(env, "drain", "--timeout", "60").returncode == 0
    # Then the file was imported, and the site is still paused
    assert services.store.latest_number("acme") == 1
    assert services.sites.get("acme").paused


def test_enqueue_scan_for_an_unknown_site_queues_nothing(
        env: Env, redis_client: redis.Redis) -> None:
    # When a scan is enqueued for a site that is not registered
    result = bb(env, "enqueue", "scan", "nope")
    # Then it is refused and nothing is queued
    assert_error(result, 2, "no site 'nope'")
    assert queued(redis_client, "imports") == []


def test_enqueue_export_puts_an_export_message_on_the_exports_queue(
        env: Env, services: Services, redis_client: redis.Redis, import_bucket: str,
        export_bucket: str) -> None:
    # Given an exporting site
    make_site(services, "acme", import_bucket, export_bucket=export_bucket)
    # When exports are enqueued with the default cutoff and with an ISO 8601 one
    default = bb(env, "enqueue", "export", "acme")
    iso = bb(env, "enqueue", "export", "acme", "--cutoff", "2024-05-01T02:00:00+02:00")
    # Then both wait in dramatiq:exports, the cutoff normalised to UTC
    for result in (default, iso):
        assert result.returncode == 0, result.stderr
        assert re.fullmatch(r"queued export acme \(message [0-9a-f-]{36}\)\n", result.stdout)
    assert [(m["actor_name"], m["args"], m["kwargs"])
            for m in queued(redis_client, "exports")] == [
        ("export", ["acme"], {}),
        ("export", ["acme"], {"cutoff": "2024-05-01T00:00:00Z"}),
    ]


def test_enqueue_reexport_of_revisions_never_exported_fails(
        env: Env, services: Services, redis_client: redis.Redis, import_bucket: str,
        export_bucket: str) -> None:
    # Given an exporting site that has exported nothing yet
    make_site(services, "acme", import_bucket, export_bucket=export_bucket)
    # When a re-export is enqueued
    result = bb(env, "enqueue", "reexport", "acme", "--from", "1")
    # Then it is refused: there is nothing to export again
    assert_error(result, 2, "site acme has exported revisions up to 0 only; --from 1 would "
                            "re-export nothing")
    assert queued(redis_client, "exports") == []


def test_enqueue_export_rejects_a_bad_cutoff(
        env: Env, services: Services, redis_client: redis.Redis, import_bucket: str,
        export_bucket: str) -> None:
    # Given an exporting site
    make_site(services, "acme", import_bucket, export_bucket=export_bucket)
    # When an export is enqueued with a cutoff that is no time
    result = bb(env, "enqueue", "export", "acme", "--cutoff", "last-tuesday")
    # Then one line says what a cutoff may be, and nothing is queued
    assert_error(result, 2, "invalid --cutoff 'last-tuesday': use yesterday, now or an ISO 8601 "
                            "time such as 2024-05-01T00:00:00Z")
    assert queued(redis_client, "exports") == []


@pytest.mark.parametrize("command", [["enqueue", "export", "acme"],
                                     ["enqueue", "reexport", "acme", "--from", "1"]])
def test_enqueue_export_for_a_site_without_export_bucket_fails(
        env: Env, services: Services, redis_client: redis.Redis, import_bucket: str,
        command: list[str]) -> None:
    # Given a site without export bucket
    make_site(services, "acme", import_bucket)
    # When an export or re-export is enqueued for it
    result = bb(env, *command)
    # Then it is refused and nothing is queued
    assert_error(result, 2, "site acme has no export bucket")
    assert queued(redis_client, "exports") == []


def test_enqueue_reexport_rejects_a_backwards_range(
        env: Env, services: Services, redis_client: redis.Redis, import_bucket: str,
        export_bucket: str) -> None:
    # Given an exporting site
    make_site(services, "acme", import_bucket, export_bucket=export_bucket)
    # When re-exports are enqueued with a backwards range and with revision 0
    backwards = bb(env, "enqueue", "reexport", "acme", "--from", "3", "--to", "2")
    zero = bb(env, "enqueue", "reexport", "acme", "--from", "0")
    # Then both are usage errors and nothing is queued
    assert_error(backwards, 2, "--to 2 is before --from 3")
    assert_click_usage_error(zero, "bucketbridge enqueue reexport")
    assert queued(redis_client, "exports") == []


# -- scheduler --once ------------------------------------------------------------------------------


def test_scheduler_once_publishes_what_is_due_once(
        env: Env, services: Services, redis_client: redis.Redis, import_bucket: str,
        export_bucket: str) -> None:
    # Given an exporting site, an import-only site and a paused exporting site
    make_site(services, "acme", import_bucket, export_bucket=export_bucket)
    make_site(services, "beta", import_bucket)
    make_site(services, "gamma", import_bucket, export_bucket=export_bucket, paused=True)
    # Long intervals, so that the two runs below cannot straddle a slot boundary
    intervals = {"BUCKETBRIDGE_SCAN_INTERVAL_S": "86400",
                 "BUCKETBRIDGE_EXPORT_INTERVAL_S": "172800"}
    # When the scheduler runs once, and once more right after
    first = bb(env, "scheduler", "--once", **intervals)
    second = bb(env, "scheduler", "--once", **intervals)
    # Then the first run published a scan per active site and an export per exporting one
    assert first.returncode == 0, first.stderr
    published = [re.sub(r"\(slot \d+\)", "(slot N)", line) for line in first.stdout.splitlines()]
    assert published == ["published scan acme (slot N)", "published export acme (slot N)",
                         "published scan beta (slot N)", "3 message(s) published"]
    assert [(m["actor_name"], m["args"]) for m in queued(redis_client, "imports")] == [
        ("scan", ["acme"]), ("scan", ["beta"])]
    assert [(m["actor_name"], m["args"], m["kwargs"])
            for m in queued(redis_client, "exports")] == [("export", ["acme"], {})]
    # And the second published nothing
    assert (second.returncode, second.stdout) == (0, "0 message(s) published\n")
    assert len(queued(redis_client, "imports")) == 2
    assert len(queued(redis_client, "exports")) == 1


# -- drain and status ------------------------------------------------------------------------------


def test_drain_imports_the_queued_scan_and_status_shows_the_result(
        env: Env, services: Services, s3: S3, redis_client: redis.Redis,
        import_bucket: str) -> None:
    # Given a site with one file and a scan queued for it
    s3.put(import_bucket, "accounts-1.csv", GOOD_CSV)
    make_site(services, "acme", import_bucket)
    assert bb(env, "enqueue", "scan", "acme").returncode == 0
    # When the queue is drained
    drained = bb(env, "drain", "--timeout", "60")
    # Then the file became revision 1 and moved to completed_imports/
    assert drained.returncode == 0, drained.stderr
    assert drained.stdout == "drained: 1 message(s) processed, queues empty\n"
    assert queued(redis_client, "imports") == []
    keys = [info.key for info in s3.list(import_bucket)]
    assert len(keys) == 1
    assert re.fullmatch(r"completed_imports/\d{4}/\d{2}/\d{2}/accounts-1\.csv", keys[0]), keys
    revision = s3.read_bytes(env.settings.store_bucket, revision_key("acme", 1))
    assert [orjson.loads(line) for line in revision.splitlines()] == [
        {"_p": "alice", "_t": 1704067200, "_n": "Signed Up", "Plan": "pro"},
        {"_p": "bob", "_t": 1704070800, "_n": "Paid"},
    ]
    # And status reports it
    status = bb(env, "status", "acme", "--json")
    assert status.returncode == 0, status.stderr
    data = orjson.loads(status.stdout)
    assert (data["site"], data["paused"], data["export"]) == ("acme", False, None)
    imp = data["import"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", imp["last_scan_at"])
    assert {k: imp[k] for k in ("revisions", "last_scan_outcome", "last_error",
                                "current_file", "backlog_files", "backlog_bytes")} == {
        "revisions": 1, "last_scan_outcome": "done", "last_error": None, "current_file": None,
        "backlog_files": 0, "backlog_bytes": 0}


def test_status_reports_the_last_error_after_a_scan_of_a_missing_bucket(
        env: Env, services: Services) -> None:
    # Given a site whose import bucket has gone, and a scan of it
    bucket = f"gone-{uuid.uuid4().hex[:12]}"
    make_site(services, "acme", bucket)
    assert bb(env, "enqueue", "scan", "acme").returncode == 0
    drained = bb(env, "drain", "--timeout", "60")
    # (drain says the scan could not do its work)
    assert drained.returncode == 1, drained.stderr
    assert f"scan acme: bucket_error: bucket {bucket} does not exist" in drained.stderr
    # When its status is asked for
    as_json = bb(env, "status", "acme", "--json")
    human = bb(env, "status", "acme")
    # Then the error is there, in both forms
    assert as_json.returncode == 0, as_json.stderr
    imp = orjson.loads(as_json.stdout)["import"]
    error = f"bucket {bucket} does not exist"
    assert (imp["last_error"], imp["bucket_error"], imp["last_scan_outcome"]) == (
        error, error, "error")
    assert imp["last_error_at"][:19] == imp["last_scan_at"][:19]
    assert (imp["revisions"], imp["backlog_files"], imp["current_file"]) == (0, None, None)
    rows = status_rows(human.stdout)
    assert rows["import bucket"] == f"ERROR {error}"
    assert re.fullmatch(rf"{error} at {imp['last_error_at']} \(\d+s ago\)", rows["last error"])


def test_export_then_reexport_through_the_cli(
        env: Env, services: Services, s3: S3, redis_client: redis.Redis, import_bucket: str,
        export_bucket: str) -> None:
    # Given an exporting site whose one file was imported
    s3.put(import_bucket, "accounts-1.csv", GOOD_CSV)
    make_site(services, "acme", import_bucket, export_bucket=export_bucket)
    assert bb(env, "enqueue", "scan", "acme").returncode == 0
    assert bb(env, "drain", "--timeout", "60").returncode == 0
    # When an export up to now is enqueued and drained
    export = bb(env, "enqueue", "export", "acme", "--cutoff", "now")
    drained = bb(env, "drain", "--timeout", "60")
    # Then revision 1 is in the customer's bucket and status shows the export position
    assert export.returncode == 0, export.stderr
    assert drained.returncode == 0, drained.stderr
    assert drained.stdout == "drained: 1 message(s) processed, queues empty\n"
    assert [orjson.loads(line) for line in
            s3.read_bytes(export_bucket, "revisions/1.json").splitlines()] == [
        {"_p": "alice", "_t": 1704067200, "_n": "Signed Up", "Plan": "pro"},
        {"_p": "bob", "_t": 1704070800, "_n": "Paid"},
    ]
    status = bb(env, "status", "acme", "--json")
    exp = orjson.loads(status.stdout)["export"]
    assert (exp["position"], exp["exported_revisions"], exp["total_revisions"],
            exp["lag_revisions"]) == (1, 1, 1, 0)
    # When revision 1 is re-exported on purpose, and a revision not exported yet
    again = bb(env, "enqueue", "reexport", "acme", "--from", "1")
    beyond = bb(env, "enqueue", "reexport", "acme", "--from", "2")
    # Then the first is queued and the second refused
    assert again.returncode == 0, again.stderr
    assert re.fullmatch(r"queued re-export acme revisions 1\.\. \(message [0-9a-f-]{36}\)\n",
                        again.stdout), again.stdout
    assert [(m["actor_name"], m["args"], m["kwargs"])
            for m in queued(redis_client, "exports")] == [
        ("export", ["acme"], {"first": 1, "last": None})]
    assert_error(beyond, 2, "site acme has exported revisions up to 1 only; --from 2 would "
                            "re-export nothing")


# -- demo, settings, Redis --------------------------------------------------------------------


def test_demo_runs_the_whole_flow_and_leaves_nothing_in_redis(
        env: Env, redis_client: redis.Redis) -> None:
    # When the demo runs (it brings its own S3 endpoint) on the user's Redis
    result = bb_process(env, "demo", timeout_s=90)
    # Then it ends well and shows the imported result and its metrics
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'bucketbridge_import_rows_total 7.0' in out.splitlines()
    assert "revisions: 3" in [line.strip() for line in out.splitlines()]
    # And it promises no URL that is dead once it exits, but says how to explore
    assert "http://" not in out.split("== 6. metrics ==")[1]
    assert "run bucketbridge demo --keep-running to explore them" in out
    # And nothing went wrong on the way, and nothing is left in the user's Redis
    assert "Traceback" not in result.stderr, result.stderr
    assert " ERROR " not in result.stderr, result.stderr
    assert redis_client.keys("*") == []


def test_demo_keep_running_says_how_to_reach_what_it_built_until_ctrl_c(
        env: Env, redis_client: redis.Redis) -> None:
    # When the demo runs with --keep-running (metrics on any free port)
    proc = subprocess.Popen([sys.executable, "-m", "producers", "demo", "--keep-running"],
                            cwd=REPO, env=env.as_dict(BUCKETBRIDGE_METRICS_PORT="0",
                                                      COLUMNS="200"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        text = "\n".join(lines)
        # Then it names the metrics URL, the store bucket and the environment to export
        url = re.search(r"^metrics: +(http://127\.0\.0\.1:(\d+)/metrics)$", text, re.MULTILINE)
        assert url and int(url.group(2)) > 0, text
        assert re.search(r"^store bucket: s3://demo-store-\w+ ", text, re.MULTILINE), text
        exported = dict(re.findall(r"^  export (\w+)=(.*)$", text, re.MULTILINE))
        assert set(exported) >= {"AWS_ENDPOINT_URL_S3", "BUCKETBRIDGE_STORE_BUCKET",
                                 "BUCKETBRIDGE_REDIS_URL", "AWS_ACCESS_KEY_ID"}
        # And what it says works: the metrics answer, and the CLI pointed there sees the site
        with urllib.request.urlopen(url.group(1), timeout=5) as response:
            assert b'bucketbridge_import_rows_total 7.0' in response.read()
        shown = subprocess.run([sys.executable, "-m", "producers", "status", "demo", "--json"],
                               cwd=REPO, env={**env.as_dict(), **exported}, capture_output=True,
                               text=True, timeout=60, check=False)
        assert shown.returncode == 0, shown.stderr
        assert orjson.loads(shown.stdout)["import"]["revisions"] == 3
        # When the user presses Ctrl-C
        proc.send_signal(signal.SIGINT)
        _rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Then it ends cleanly, takes its endpoint down and leaves nothing in Redis
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    with pytest.raises(OSError):
        urllib.request.urlopen(url.group(1), timeout=2)
    assert redis_client.keys("*") == []


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("BUCKETBRIDGE_IMPORT_BUDGET_S", "abc",
     "invalid integer value for BUCKETBRIDGE_IMPORT_BUDGET_S: 'abc'"),
    ("BUCKETBRIDGE_SCAN_INTERVAL_S", "0", "BUCKETBRIDGE_SCAN_INTERVAL_S must be at least 1, got 0"),
])
def test_a_bad_setting_fails_with_one_line_naming_the_variable(
        env: Env, variable: str, value: str, message: str) -> None:
    # When any command starts with a malformed setting
    result = bb(env, "sites", "list", **{variable: value})
    # Then it stops at once with one line naming the variable
    assert_error(result, 2, message)
    assert result.stdout == ""


@pytest.mark.parametrize(("variable", "value"), [
    ("BUCKETBRIDGE_REDIS_URL", "localhost:6379"),
    ("BUCKETBRIDGE_METRICS_PORT", "70000"),
])
def test_an_unusable_setting_is_refused_at_start_up(
        env: Env, services: Services, import_bucket: str, variable: str, value: str) -> None:
    # Given a registered site and a setting no process could use
    make_site(services, "acme", import_bucket)
    # When a command starts
    result = bb(env, "enqueue", "scan", "acme", **{variable: value})
    # Then it stops with a usage error: one line naming the variable, no traceback
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bucketbridge: error: ") and variable in lines[0], lines[0]


@pytest.mark.parametrize("command", [["enqueue", "scan", "acme"], ["scheduler", "--once"],
                                     ["drain", "--timeout", "10"]])
def test_redis_unreachable_fails_with_one_line(
        env: Env, services: Services, import_bucket: str, command: list[str]) -> None:
    # Given a registered site but no Redis where the settings point
    make_site(services, "acme", import_bucket)
    # When a command that needs Redis runs
    result = bb(env, *command, BUCKETBRIDGE_REDIS_URL="redis://127.0.0.1:1/0")
    # Then it is a failure (1), not a usage error, told in one line without a traceback
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bucketbridge: error: Redis: "), lines[0]
    assert "127.0.0.1:1" in lines[0]
