"""A site's life through the CLI: added before its first file (``--allow-empty``), refused when
every previewed row is rejected (unless ``--force``), its import location changed with the same
checks as add, removed (revisions kept unless ``--purge-data``); ``--dry-run`` changes nothing.
"""

from __future__ import annotations

import uuid

import orjson
import pytest
import redis

from shared.errors import RetryableError
from shared.fleet.leases import Lease
from shared.services import Services
from shared.store.revisions import FileEnd, RevisionMeta, revision_key
from shared.store.s3 import S3
from shared.store.siteindex import SiteIndex
from shared.store.sites import SiteConfig
from tests.conftest import CliResult, Env, invoke_cli

pytestmark = pytest.mark.timeout(120)

GOOD = b"Identity,Timestamp,Event\na,1700000000,E\nb,1700000001,E\n"
ALL_BAD = b"Identity,Timestamp,Event\n,1700000000,E\nb,yesterday,E\n"


def bb(env: Env, *args: str) -> CliResult:
    return invoke_cli(env, *args, COLUMNS="200")


def add(env: Env, bucket: str, *extra: str, site: str = "acme") -> CliResult:
    return bb(env, "sites", "add", site, "--import-bucket", bucket, "--base-filename",
              "accounts.csv", *extra)


def one_error(result: CliResult) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0].removeprefix("bucketbridge: error: ")


# -- add --------------------------------------------------------------------------------------


def test_add_allow_empty_registers_a_site_before_its_first_file(
        env: Env, services: Services, import_bucket: str) -> None:
    # When a site is added to an empty bucket with --allow-empty
    result = add(env, import_bucket, "--allow-empty", "--yes")
    # Then it is registered, and status says it waits for its first file
    assert result.returncode == 0, result.stderr
    assert (f"No file matching accounts*.csv or accounts*.csv.gz in s3://{import_bucket} yet: "
            "the site waits for its first file.") in result.stdout.splitlines()
    assert services.sites.exists("acme")
    status = orjson.loads(bb(env, "status", "acme", "--json").stdout)
    assert status["import"]["waiting_for_first_file"] is True
    human = dict(line.split("\t", 1) for line in bb(env, "status", "acme").stdout.splitlines())
    assert human["current file"] == "waiting for first file"
    assert human["state"] == "active, waiting for first file"


def test_add_refuses_a_preview_where_every_row_is_rejected_unless_forced(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    s3.put(import_bucket, "accounts-1.csv", ALL_BAD)
    # When it is added with --yes (a script): refused, naming the problem
    error = one_error(add(env, import_bucket, "--yes"))
    assert error.startswith("every previewed row of accounts-1.csv was rejected (")
    assert error.endswith("): fix the files, or pass --force to go on anyway")
    assert not services.sites.exists("acme")
    # And with --force it is registered
    forced = add(env, import_bucket, "--yes", "--force")
    assert forced.returncode == 0, forced.stderr
    assert services.sites.exists("acme")


def test_add_dry_run_checks_and_previews_but_registers_nothing(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    s3.put(import_bucket, "accounts-1.csv", GOOD)
    result = add(env, import_bucket, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "First rows of accounts-1.csv" in result.stdout
    assert result.stdout.splitlines()[-1] == ("dry run: site acme would be registered; nothing "
                                              "changed")
    assert not services.sites.exists("acme")
    # And a dry run still fails on what add would fail on
    assert one_error(bb(env, "sites", "add", "acme", "--import-bucket", "no-such-bucket-x1",
                        "--base-filename", "accounts.csv", "--dry-run")) == \
        "bucket no-such-bucket-x1 does not exist"


# -- update -----------------------------------------------------------------------------------


def registered(env: Env, s3: S3, bucket: str) -> None:
    s3.put(bucket, "accounts-1.csv", GOOD)
    assert add(env, bucket, "--yes").returncode == 0


def test_update_changes_the_import_bucket_and_base_filename_with_the_checks_of_add(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    registered(env, s3, import_bucket)
    other = f"other-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(other)
    s3.put(other, "events-1.csv", GOOD)
    # When the bucket and the base filename change
    result = bb(env, "sites", "update", "acme", "--import-bucket", other, "--base-filename",
                "events.csv", "--yes")
    # Then the new location was previewed, and the site imports from there
    assert result.returncode == 0, result.stderr
    assert "First rows of events-1.csv" in result.stdout
    config = services.sites.get("acme")
    assert (config.import_bucket, config.base_filename) == (other, "events.csv")
    assert bb(env, "enqueue", "scan", "acme").returncode == 0
    assert bb(env, "drain", "--timeout", "60").returncode == 0
    assert services.store.latest_number("acme") == 1
    assert "events-1.csv" not in [i.key for i in s3.list(other)]


@pytest.mark.parametrize(("args", "message"), [
    (("--import-bucket", "no-such-bucket-x2"), "bucket no-such-bucket-x2 does not exist"),
    (("--base-filename", "nothing.csv"), "no file matching nothing*.csv or nothing*.csv.gz in "
     "s3://{bucket} (pass --allow-empty to register the site before its first upload)"),
    (("--base-filename", "accounts.txt"), "base filename 'accounts.txt' must end in .csv or "
     ".csv.gz"),
    (("--base-filename", "bad.csv"), "every previewed row of bad-1.csv was rejected"),
])
def test_update_of_the_import_location_is_refused_like_add(
        env: Env, services: Services, s3: S3, import_bucket: str, args: tuple[str, ...],
        message: str) -> None:
    registered(env, s3, import_bucket)
    s3.put(import_bucket, "bad-1.csv", ALL_BAD)
    before = services.sites.get("acme")
    error = one_error(bb(env, "sites", "update", "acme", *args, "--yes"))
    assert error.startswith(message.format(bucket=import_bucket)), error
    assert services.sites.get("acme") == before


def test_update_refuses_to_abandon_an_unfinished_file_unless_forced(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    # Given a site whose file is half imported (its newest revision leaves the file open)
    registered(env, s3, import_bucket)
    s3.put(import_bucket, "events-1.csv", GOOD)
    services.store.write("acme", RevisionMeta(
        number=1, events=1, min_t=1, max_t=1, written_at="2024-01-01T00:00:00Z", source="csv",
        source_key="accounts-1.csv", source_etag='"e"', record_start=1, record_end=1,
        byte_start=0, byte_end=40, line_end=2, rejected=0, file_end=FileEnd.OPEN,
        file_first_revision=1), b'{"_p":"a","_t":1}\n')
    args = ("sites", "update", "acme", "--base-filename", "events.csv", "--yes")
    error = one_error(bb(env, *args))
    assert error.startswith("the import of accounts-1.csv stopped at record 1 (revision 1)")
    assert services.sites.get("acme").base_filename == "accounts.csv"
    assert bb(env, *args, "--force").returncode == 0
    assert services.sites.get("acme").base_filename == "events.csv"


def test_update_dry_run_shows_the_change_and_changes_nothing(
        env: Env, services: Services, s3: S3, import_bucket: str, export_bucket: str) -> None:
    registered(env, s3, import_bucket)
    result = bb(env, "sites", "update", "acme", "--export-bucket", export_bucket, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"export_bucket: None -> {export_bucket!r}",
        "dry run: site acme would be changed; nothing changed"]
    assert services.sites.get("acme").export_bucket is None


# -- remove -----------------------------------------------------------------------------------


def imported(env: Env, s3: S3, services: Services, bucket: str) -> None:
    registered(env, s3, bucket)
    assert bb(env, "enqueue", "scan", "acme").returncode == 0
    assert bb(env, "drain", "--timeout", "60").returncode == 0
    assert services.store.latest_number("acme") == 1


def test_remove_stops_scheduling_and_keeps_the_revisions(
        env: Env, services: Services, s3: S3, import_bucket: str,
        redis_client: redis.Redis) -> None:
    imported(env, s3, services, import_bucket)
    store = services.settings.store_bucket
    # When it is removed (without --yes on a pipe: refused)
    assert one_error(bb(env, "sites", "remove", "acme")) == \
        "confirmation needed: run in a terminal or pass --yes"
    removed = bb(env, "sites", "remove", "acme", "--yes")
    # Then it is gone from the registry and the schedule, its revisions stay
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines()[-1] == (f"site acme removed; its data stays in "
                                               f"s3://{store}/sites/acme/")
    assert not services.sites.exists("acme")
    assert s3.head(store, revision_key("acme", 1)) is not None
    assert bb(env, "scheduler", "--once").stdout == "0 message(s) published\n"
    assert one_error(bb(env, "status", "acme")) == "no site 'acme'"
    # And its hints are gone from Redis (they would be stale after a purge)
    assert redis_client.keys("bucketbridge:cache:*acme") == []
    # And the same id can be registered again, going on from its revisions
    s3.put(import_bucket, "accounts-2.csv", GOOD)
    assert add(env, import_bucket, "--yes").returncode == 0
    assert bb(env, "enqueue", "scan", "acme").returncode == 0
    assert bb(env, "drain", "--timeout", "60").returncode == 0
    assert services.store.latest_number("acme") == 2


def test_remove_purge_data_deletes_everything_of_the_site(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    imported(env, s3, services, import_bucket)
    store = services.settings.store_bucket
    result = bb(env, "sites", "remove", "acme", "--purge-data", "--yes")
    assert result.returncode == 0, result.stderr
    assert "deletes its 1 revision(s), export ledger and statuses" in result.stdout
    assert list(s3.list(store, "sites/acme/")) == []


def test_remove_dry_run_says_what_it_would_do_and_changes_nothing(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    imported(env, s3, services, import_bucket)
    result = bb(env, "sites", "remove", "acme", "--purge-data", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("site acme: no more scans or exports are scheduled; queued messages "
                        "for it are acked without work")
    assert lines[-1] == "dry run: site acme would be removed; nothing changed"
    assert services.sites.exists("acme")
    assert services.store.latest_number("acme") == 1


def test_remove_purge_data_is_refused_while_a_job_of_the_site_runs(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    imported(env, s3, services, import_bucket)
    lease = Lease(services.redis, "import", "acme")
    assert lease.acquire()
    try:
        error = one_error(bb(env, "sites", "remove", "acme", "--purge-data", "--yes"))
    finally:
        lease.release()
    assert error.startswith("an import of site acme is running on ")
    assert services.sites.exists("acme") and services.store.latest_number("acme") == 1


def test_remove_of_an_unknown_site_is_a_usage_error(env: Env, redis_client: redis.Redis) -> None:
    assert one_error(bb(env, "sites", "remove", "nope", "--yes")) == "no site 'nope'"


def test_site_config_is_what_sites_show_prints(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    registered(env, s3, import_bucket)
    shown = orjson.loads(bb(env, "sites", "show", "acme").stdout)
    assert SiteConfig(**shown) == services.sites.get("acme")


def test_preview_json_names_the_files_the_unimportable_ones_and_the_rows(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    s3.put(import_bucket, "accounts-1.csv", b"Name\nx\n")
    registered(env, s3, import_bucket)  # accounts-1.csv is replaced by a good file here
    s3.put(import_bucket, "accounts-0.csv", b"Name\nx\n")
    result = bb(env, "sites", "preview", "acme", "--json")
    assert result.returncode == 0, result.stderr
    data = orjson.loads(result.stdout)
    assert [f["key"] for f in data["files"]] == ["accounts-0.csv", "accounts-1.csv"]
    assert [u["key"] for u in data["unimportable"]] == ["accounts-0.csv"]
    assert data["preview"]["key"] == "accounts-1.csv"
    assert [r["line"]["_p"] for r in data["preview"]["rows"]] == ["a", "b"]
    assert data["problem"] is None


def test_a_change_the_site_index_could_not_follow_fails_and_names_the_fix(
        env: Env, services: Services, import_bucket: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store where the site index cannot be written just now
    def unavailable(_index: SiteIndex, _site: str) -> None:
        raise RetryableError("the store answered 503 Slow Down")

    monkeypatch.setattr(SiteIndex, "refresh", unavailable)
    # When a site is added
    result = add(env, import_bucket, "--allow-empty", "--yes")
    # Then its configuration is written, but the command fails in one line naming the fix
    assert services.sites.exists("acme")
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        "bucketbridge: error: site acme changed, but the site index could not follow (the "
        "store answered 503 Slow Down): the scheduler will not see it until `bucketbridge "
        "sites reindex` succeeds"]
    assert "acme" not in services.index.read_all()
    # And once the store answers again, the rebuild the message names puts the site in the index
    monkeypatch.undo()
    assert bb(env, "sites", "reindex").returncode == 0
    assert "acme" in services.index.read_all()
