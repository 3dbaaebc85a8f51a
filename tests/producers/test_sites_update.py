"""``bucketbridge sites update``: export settings and access changed on an existing site."""

from __future__ import annotations

import uuid
from dataclasses import replace

import orjson
import pytest

from shared.services import Services
from shared.store.s3 import S3
from tests.conftest import Env, invoke_cli

pytestmark = pytest.mark.timeout(120)


def add_site(env: Env, s3: S3, import_bucket: str) -> None:
    s3.put(import_bucket, "accounts.csv", b"Identity,Timestamp,Event\na,1700000000,E\n")
    added = invoke_cli(env, "sites", "add", "acme", "--import-bucket", import_bucket,
                    "--base-filename", "accounts.csv", "--yes")
    assert added.returncode == 0, added.stderr


def test_export_bucket_set_later_starts_exports(
        env: Env, s3: S3, services: Services, import_bucket: str, export_bucket: str) -> None:
    # Given a site registered without an export bucket, with a revision imported
    add_site(env, s3, import_bucket)
    assert invoke_cli(env, "enqueue", "scan", "acme").returncode == 0
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 0
    assert invoke_cli(env, "enqueue", "export", "acme").returncode == 2  # no export bucket yet
    # When an operator sets one
    updated = invoke_cli(env, "sites", "update", "acme", "--export-bucket", export_bucket,
                      "--export-prefix", "km/")
    assert updated.returncode == 0, updated.stderr
    config = orjson.loads(updated.stdout)
    assert config["export_bucket"] == export_bucket and config["export_prefix"] == "km/"
    # Then the site exports there
    assert invoke_cli(env, "enqueue", "export", "acme", "--cutoff", "now").returncode == 0
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 0
    assert s3.head(export_bucket, "km/revisions/1.json") is not None
    assert s3.head(export_bucket, "km/index.csv") is not None
    # And --no-export stops it, keeping the import as it was
    stopped = invoke_cli(env, "sites", "update", "acme", "--no-export")
    assert stopped.returncode == 0 and orjson.loads(stopped.stdout)["export_bucket"] is None
    assert services.sites.get("acme").import_bucket == import_bucket


@pytest.mark.parametrize("args", [
    ("--export-bucket", "no-such-bucket-anywhere"),
    ("--external-id", "x-123"),  # without --role-arn
    ("--no-export", "--export-prefix", "x/"),
    (),
    ("--export-bucket", "Bad_Bucket"),
])
def test_bad_updates_are_refused_and_change_nothing(
        env: Env, s3: S3, services: Services, import_bucket: str, args: tuple[str, ...]) -> None:
    add_site(env, s3, import_bucket)
    before = services.sites.get("acme")
    result = invoke_cli(env, "sites", "update", "acme", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("bucketbridge: error:") and result.stderr.count("\n") == 1
    assert services.sites.get("acme") == before


def test_unknown_site_is_a_usage_error(env: Env) -> None:
    result = invoke_cli(env, "sites", "update", "nosuch", "--no-export")
    assert result.returncode == 2 and "no site 'nosuch'" in result.stderr


def index_files(s3: S3, bucket: str, prefix: str = "") -> list[str]:
    rows = s3.read_bytes(bucket, f"{prefix}index.csv").decode().splitlines()[1:]
    return [row.split(",")[0] for row in rows]


def exported_files(s3: S3, bucket: str, prefix: str = "") -> list[str]:
    return sorted(i.key.removeprefix(prefix) for i in s3.list(bucket, f"{prefix}revisions/"))


def scan_now(env: Env) -> None:
    assert invoke_cli(env, "enqueue", "scan", "acme").returncode == 0
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 0


def export_now(env: Env) -> None:
    assert invoke_cli(env, "enqueue", "export", "acme", "--cutoff", "now").returncode == 0
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 0


def test_a_moved_export_starts_its_new_location_from_revision_1_once_accepted(
        env: Env, s3: S3, services: Services, import_bucket: str, export_bucket: str) -> None:
    # Given a site that exported revision 1 to one bucket
    add_site(env, s3, import_bucket)
    assert invoke_cli(env, "sites", "update", "acme", "--export-bucket", export_bucket) \
        .returncode == 0
    scan_now(env)
    export_now(env)
    assert index_files(s3, export_bucket) == ["revisions/1.json"]
    new = f"moved-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(new)
    # When the export is moved without --re-export-all, it is refused, saying why
    refused = invoke_cli(env, "sites", "update", "acme", "--export-bucket", new,
                         "--export-prefix", "km")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr == (
        f"bucketbridge: error: site acme exported up to revision 1 to s3://{export_bucket}/; "
        f"s3://{new}/km/ starts from revision 1 (every revision within the lookback is "
        "exported there again): pass --re-export-all to go on\n")
    assert services.sites.get("acme").export_bucket == export_bucket
    # And --dry-run says the same without changing anything
    dry = invoke_cli(env, "sites", "update", "acme", "--export-bucket", new, "--dry-run")
    assert "note: site acme exported up to revision 1" in dry.stdout
    # When it is moved with --re-export-all and a second revision arrives
    moved = invoke_cli(env, "sites", "update", "acme", "--export-bucket", new,
                       "--export-prefix", "km", "--re-export-all")
    assert moved.returncode == 0, moved.stderr
    s3.put(import_bucket, "accounts-2.csv", b"Identity,Timestamp,Event\nb,1700000001,E\n")
    scan_now(env)
    export_now(env)
    # Then the new location has every revision from 1, and its index names exactly those
    assert exported_files(s3, new, "km/") == ["revisions/1.json", "revisions/2.json"]
    assert index_files(s3, new, "km/") == ["revisions/1.json", "revisions/2.json"]
    assert s3.read_bytes(new, "km/revisions/1.json") == \
        s3.read_bytes(export_bucket, "revisions/1.json")
    # And the old location was left as it was
    assert index_files(s3, export_bucket) == ["revisions/1.json"]
    assert exported_files(s3, export_bucket) == ["revisions/1.json"]


def test_a_hand_edited_export_location_also_starts_from_revision_1(
        env: Env, s3: S3, services: Services, import_bucket: str, export_bucket: str) -> None:
    # Given a site that exported revision 1
    add_site(env, s3, import_bucket)
    assert invoke_cli(env, "sites", "update", "acme", "--export-bucket", export_bucket,
                      "--export-prefix", "a/").returncode == 0
    scan_now(env)
    export_now(env)
    # When its site.json is edited by hand to another prefix (no CLI, no check)
    services.sites.update("acme", lambda c: replace(c, export_prefix="b/"))
    export_now(env)
    # Then the new place has revision 1 and an index naming it, not an empty index
    assert exported_files(s3, export_bucket, "b/") == ["revisions/1.json"]
    assert index_files(s3, export_bucket, "b/") == ["revisions/1.json"]
    # And moving back to the first place is the same rule: it starts again from 1
    refused = invoke_cli(env, "sites", "update", "acme", "--export-prefix", "a/")
    assert refused.returncode == 2 and "--re-export-all" in refused.stderr
