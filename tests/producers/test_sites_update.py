"""``bucketbridge sites update``: export settings and access changed on an existing site."""

from __future__ import annotations

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
