"""Tenant isolation where sites are created or changed, as an operator sees it: each refusal is
one line on stderr with exit status 2, and nothing is registered, changed or claimed.

The rules (``shared.formats.locations``) are tested pure; here the CLI applies them against the
claims of real sites, on moto's S3 server and the real Redis."""

from __future__ import annotations

import re
import subprocess
import sys

import orjson
import pytest

from shared.errors import AccessDenied
from shared.services import Services
from shared.store import access as access_module
from shared.store.claims import Locations
from shared.store.s3 import S3
from tests.conftest import REPO, CliResult, Env, invoke_cli

pytestmark = pytest.mark.timeout(120)

GOOD = b"Identity,Timestamp,Event\na,1700000000,E\n"
ROLE = "arn:aws:iam::123456789012:role/reader"


def bb(env: Env, *args: str) -> CliResult:
    return invoke_cli(env, *args, COLUMNS="200")


def add(env: Env, site: str, bucket: str, base: str, *extra: str) -> CliResult:
    return bb(env, "sites", "add", site, "--import-bucket", bucket, "--base-filename", base,
              "--allow-empty", "--yes", *extra)


def ok(result: CliResult) -> CliResult:
    assert result.returncode == 0, result.stderr
    return result


def one_error(result: CliResult) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("bucketbridge: error: "), lines[0]
    return lines[0].removeprefix("bucketbridge: error: ")


# -- the store bucket --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["import", "export"])
def test_the_store_bucket_is_refused_as_a_sites_bucket(
        env: Env, services: Services, s3: S3, import_bucket: str, role: str) -> None:
    store = services.settings.store_bucket
    s3.put(store, "sites/acme/export/l.csv", GOOD)  # what issue 9 saw moved away
    args = ("--export-bucket", store) if role == "export" else ()
    bucket = store if role == "import" else import_bucket
    error = one_error(add(env, "evil", bucket, "sites/acme/export/l.csv", *args))
    assert error == (f"the {role} bucket {store} is bucketbridge's store bucket: no site may "
                     "import from it or export to it")
    assert not services.sites.exists("evil")
    # and update cannot move a site there either
    ok(add(env, "good", import_bucket, "accounts.csv"))
    option = "--export-bucket" if role == "export" else "--import-bucket"
    assert "store bucket" in one_error(bb(env, "sites", "update", "good", option, store,
                                          "--allow-empty", "--yes"))
    assert services.sites.get("good").import_bucket == import_bucket


# -- import locations --------------------------------------------------------------------------


def test_a_pattern_overlapping_another_sites_is_refused_naming_that_site(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    # Given site acme importing accounts*.csv, with a file waiting
    s3.put(import_bucket, "accounts-2.csv", GOOD)
    ok(add(env, "acme", import_bucket, "accounts.csv"))
    # When another site would import acc*.csv from the same bucket (it matches accounts-2.csv)
    error = one_error(add(env, "evil", import_bucket, "acc.csv"))
    # Then it is refused, naming the site that holds the location, and nothing is registered
    assert error == (f"import location s3://{import_bucket}/acc*.csv or acc*.csv.gz overlaps "
                     f"site acme's s3://{import_bucket}/accounts*.csv or accounts*.csv.gz")
    assert not services.sites.exists("evil")
    # And the same holds for the gzip-only pattern and for a longer stem
    assert "overlaps site acme's" in one_error(add(env, "evil", import_bucket,
                                                   "accounts.csv.gz"))
    assert "overlaps site acme's" in one_error(add(env, "evil", import_bucket,
                                                   "accounts-2.csv"))
    # While a pattern no key can share with acme's, or another folder, is accepted
    ok(add(env, "bills", import_bucket, "bills.csv"))
    ok(add(env, "sub", import_bucket, "in/accounts.csv"))


def test_an_update_into_another_sites_location_is_refused_and_changes_nothing(
        env: Env, services: Services, import_bucket: str) -> None:
    ok(add(env, "acme", import_bucket, "accounts.csv"))
    ok(add(env, "beta", import_bucket, "bills.csv"))
    before = services.sites.get("beta")
    error = one_error(bb(env, "sites", "update", "beta", "--base-filename", "acc.csv",
                         "--allow-empty", "--yes"))
    assert error.endswith(f"overlaps site acme's s3://{import_bucket}/accounts*.csv or "
                          "accounts*.csv.gz")
    assert services.sites.get("beta") == before


def test_remove_releases_and_update_moves_the_claims(
        env: Env, services: Services, import_bucket: str) -> None:
    # Given acme importing accounts*.csv
    ok(add(env, "acme", import_bucket, "accounts.csv"))
    assert one_error(add(env, "beta", import_bucket, "accounts.csv")).endswith("site acme's "
        f"s3://{import_bucket}/accounts*.csv or accounts*.csv.gz")
    # When acme moves to bills.csv, accounts.csv is free for another site
    ok(bb(env, "sites", "update", "acme", "--base-filename", "bills.csv", "--allow-empty",
          "--yes"))
    ok(add(env, "beta", import_bucket, "accounts.csv"))
    # And bills.csv is acme's now
    assert "site acme's" in one_error(add(env, "gamma", import_bucket, "bills-x.csv"))
    # When acme is removed, bills.csv is free again
    ok(bb(env, "sites", "remove", "acme", "--yes"))
    ok(add(env, "gamma", import_bucket, "bills-x.csv"))
    claims = services.claims.holders(Locations.of(services.sites.get("beta")).all)
    assert sorted(c.site for c in claims) == ["beta", "gamma"]


# -- export locations --------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [("", ""), ("", "km/"), ("km/", "km/acme"),
                                               ("km/acme/", "km")])
def test_an_export_location_overlapping_another_sites_is_refused(
        env: Env, services: Services, s3: S3, import_bucket: str, export_bucket: str,
        first: str, second: str) -> None:
    ok(add(env, "acme", import_bucket, "a.csv", "--export-bucket", export_bucket,
           "--export-prefix", first))
    error = one_error(add(env, "evil", import_bucket, "b.csv", "--export-bucket",
                          export_bucket, "--export-prefix", second))
    assert error.startswith(f"export location s3://{export_bucket}/")
    assert error.endswith(f"overlaps site acme's s3://{export_bucket}/{first}")
    assert not services.sites.exists("evil")
    # and moving an existing site's export there is refused too
    ok(add(env, "beta", import_bucket, "c.csv"))
    assert "overlaps site acme's" in one_error(bb(
        env, "sites", "update", "beta", "--export-bucket", export_bucket, "--export-prefix",
        second))
    assert services.sites.get("beta").export_bucket is None


def test_side_by_side_export_prefixes_are_accepted(
        env: Env, import_bucket: str, export_bucket: str) -> None:
    ok(add(env, "acme", import_bucket, "a.csv", "--export-bucket", export_bucket,
           "--export-prefix", "acme"))
    ok(add(env, "beta", import_bucket, "b.csv", "--export-bucket", export_bucket,
           "--export-prefix", "acme-2/"))


def test_an_import_that_would_take_another_sites_export_files_is_refused(
        env: Env, s3: S3, import_bucket: str, export_bucket: str) -> None:
    ok(add(env, "acme", import_bucket, "a.csv", "--export-bucket", export_bucket))
    error = one_error(add(env, "evil", export_bucket, "index.csv"))
    assert error == (f"import location s3://{export_bucket}/index*.csv or index*.csv.gz matches "
                     f"the export files of site acme's s3://{export_bucket}/")
    # nor may a site import its own export's files
    error = one_error(add(env, "self", import_bucket, "status.csv", "--export-bucket",
                          import_bucket))
    assert error.startswith(f"import location s3://{import_bucket}/status*.csv or "
                            "status*.csv.gz matches the files the site's own export writes")


@pytest.mark.parametrize(("prefix", "message"), [
    ("../acme/", "export prefix '../acme/' has an empty, '.' or '..' segment"),
    ("km/\x1b]0;owned\x07", "export prefix 'km/\\x1b]0;owned\\x07' holds control characters"),
    ("km\nx", "export prefix 'km\\nx' holds control characters"),
    ("k" * 1025, "export prefix is longer than 512 bytes"),
])
def test_unsafe_export_prefixes_are_refused(
        env: Env, services: Services, import_bucket: str, export_bucket: str, prefix: str,
        message: str) -> None:
    error = one_error(add(env, "acme", import_bucket, "a.csv", "--export-bucket",
                          export_bucket, "--export-prefix", prefix))
    assert error == message
    assert not services.sites.exists("acme")


def test_an_export_prefix_gets_its_trailing_slash(
        env: Env, services: Services, import_bucket: str, export_bucket: str) -> None:
    ok(add(env, "acme", import_bucket, "a.csv", "--export-bucket", export_bucket,
           "--export-prefix", "km/acme"))
    assert services.sites.get("acme").export_prefix == "km/acme/"


# -- roles and external ids --------------------------------------------------------------------


def test_sites_add_generates_an_external_id_and_shows_it_once(
        env: Env, services: Services, import_bucket: str) -> None:
    # When a site is added with a role and no external id
    result = ok(add(env, "acme", import_bucket, "a.csv", "--role-arn", ROLE))
    # Then a random one is made, stored, and printed this once
    shown = re.findall(rf"^External id for {ROLE}: ([0-9a-f]+)$", result.stdout, re.MULTILINE)
    stored = services.sites.get("acme").external_id
    assert len(shown) == 1 and shown[0] == stored and len(stored) == 40
    assert "shown once" in result.stdout
    # And nowhere else: sites show hides it
    config = orjson.loads(ok(bb(env, "sites", "show", "acme")).stdout)
    assert config["role_arn"] == ROLE and config["external_id"] == "(hidden)"
    assert stored not in ok(bb(env, "status", "acme")).stdout
    # And another site gets another one
    ok(add(env, "beta", import_bucket, "b.csv", "--role-arn", ROLE))
    assert services.sites.get("beta").external_id not in (None, stored)


def test_a_role_and_external_id_pair_cannot_be_reused_by_another_site(
        env: Env, services: Services, import_bucket: str) -> None:
    ok(add(env, "acme", import_bucket, "a.csv", "--role-arn", ROLE, "--external-id", "ext-1"))
    error = one_error(add(env, "evil", import_bucket, "b.csv", "--role-arn", ROLE,
                          "--external-id", "ext-1"))
    assert error == f"role {ROLE} with this external id belongs to site acme"
    assert "ext-1" not in error
    ok(add(env, "beta", import_bucket, "c.csv", "--role-arn", ROLE, "--external-id", "ext-2"))
    assert one_error(bb(env, "sites", "update", "beta", "--role-arn", ROLE, "--external-id",
                        "ext-1")).endswith("belongs to site acme")
    assert services.sites.get("beta").external_id == "ext-2"


def test_update_with_a_new_role_generates_and_reveals_the_external_id_once(
        env: Env, services: Services, import_bucket: str) -> None:
    ok(add(env, "acme", import_bucket, "a.csv"))
    result = ok(bb(env, "sites", "update", "acme", "--role-arn", ROLE))
    printed = orjson.loads(result.stdout)
    stored = services.sites.get("acme").external_id
    assert printed["external_id"] == stored and stored is not None
    assert orjson.loads(ok(bb(env, "sites", "show", "acme")).stdout)["external_id"] == \
        "(hidden)"


def test_a_role_that_does_not_trust_the_new_external_id_yet_registers_the_site_paused(
        env: Env, services: Services, import_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a role whose trust policy does not know the external id about to be generated
    def untrusted(*_args: object, **_kwargs: object) -> None:
        raise AccessDenied(f"cannot assume role {ROLE}: AccessDenied")

    monkeypatch.setattr(access_module, "assume_role", untrusted)
    # When the site is added with the role and no external id
    result = ok(add(env, "acme", import_bucket, "a.csv", "--role-arn", ROLE))
    # Then it is registered paused, its external id shown once, and the next step said
    config = services.sites.get("acme")
    assert config.paused and config.external_id is not None
    assert f"External id for {ROLE}: {config.external_id}" in result.stdout
    assert "run: bucketbridge sites resume acme" in result.stdout
    # And a given external id that is refused is an error, not a paused site
    error = invoke_cli(env, "sites", "add", "beta", "--import-bucket", import_bucket,
                       "--base-filename", "b.csv", "--role-arn", ROLE, "--external-id",
                       "ext-9", "--allow-empty", "--yes")
    assert error.returncode == 1 and "cannot assume role" in error.stderr
    assert not services.sites.exists("beta")


def test_two_operators_adding_overlapping_sites_at_once_one_wins(
        env: Env, services: Services, import_bucket: str) -> None:
    # When two operators add overlapping sites at the same moment, each from its own process
    # (the claim race itself is forced in tests/shared/store/test_claims.py)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "producers", "sites", "add", site, "--import-bucket",
         import_bucket, "--base-filename", base, "--allow-empty", "--yes"],
        env=env.as_dict(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for site, base in (("acme", "acc.csv"), ("beta", "accounts.csv"))]
    results = [proc.communicate(timeout=60) for proc in procs]
    codes = sorted(proc.returncode for proc in procs)
    # Then one is registered and the other refused in one line, naming the winner
    assert codes == [0, 2], results
    winner = "acme" if procs[0].returncode == 0 else "beta"
    loser = "beta" if winner == "acme" else "acme"
    _, stderr = results[0 if loser == "acme" else 1]
    assert stderr.count("\n") == 1 and f"overlaps site {winner}'s" in stderr, stderr
    assert services.sites.exists(winner) and not services.sites.exists(loser)
