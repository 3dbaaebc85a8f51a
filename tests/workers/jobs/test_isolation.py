"""Defence in depth: the fleet checks a site's locations again before it acts.  A site.json edited
by hand so that it names the store bucket or a location another site holds is refused (outcome
``refused``, the reason in its status), never acted on; a hand-written one whose locations
nobody holds keeps working, and is claimed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shared.services import Services
from shared.store.claims import Locations
from shared.store.s3 import S3
from shared.store.sites import SiteConfig, site_config_key
from tests.conftest import Env, invoke_cli
from tests.shared.exports.test_exporter import write_revision
from tests.workers.jobs.test_jobs import export_job, scan_job

pytestmark = pytest.mark.timeout(60)

CSV = b"Identity,Timestamp,Event\nann,1700000000,Signed Up\n"


def hand_write(services: Services, config: SiteConfig) -> None:
    """site.json written as an operator's editor would: no claim, no check."""
    services.store_s3.put(services.settings.store_bucket, site_config_key(config.site_id),
                          config.to_json())


def keys(s3: S3, bucket: str) -> set[str]:
    return {i.key for i in s3.list(bucket)}


def test_a_site_edited_to_import_from_the_store_bucket_is_refused(
        services: Services, s3: S3, site: SiteConfig) -> None:
    # Given site acme's export ledger in the store bucket, and a site edited by hand to import
    # from the store bucket with a base name that matches it
    store = services.settings.store_bucket
    s3.put(store, "sites/acme/export/l.csv", CSV)
    hand_write(services, SiteConfig(site_id="evil", import_bucket=store,
                                    base_filename="sites/acme/export/l.csv"))
    before = keys(s3, store)
    # When the fleet scans it
    outcome = scan_job(services, [])("evil")
    # Then the scan is refused: nothing in the store bucket was read, moved or written
    assert outcome == "refused"
    summary = services.fleet_status.docs
    assert keys(s3, store) - before == {"sites/evil/status/scan.json",
                                        summary.key(summary.shard_of("evil"))}
    assert "sites/acme/export/l.csv" in keys(s3, store)
    status = services.statuses.read("evil", "scan")
    assert status.outcome == "refused"
    assert status.last_error == (f"refused: the import bucket {store} is bucketbridge's store "
                                 "bucket: no site may import from it or export to it")


def test_a_site_edited_to_export_into_the_store_bucket_is_refused(
        services: Services, s3: S3, import_bucket: str) -> None:
    store = services.settings.store_bucket
    hand_write(services, SiteConfig(site_id="evil", import_bucket=import_bucket,
                                    base_filename="e.csv", export_bucket=store,
                                    export_prefix="sites/acme/"))
    write_revision(services.store, "evil", 1, services.clock.now_s() - 2 * 86400, [1700000000])
    assert export_job(services, [])("evil") == "refused"
    assert not [k for k in keys(s3, store) if k.startswith("sites/acme/")]
    assert "store bucket" in (services.statuses.read("evil", "export").last_error or "")


def test_a_site_edited_into_a_location_another_site_holds_is_refused(
        services: Services, s3: S3, site: SiteConfig) -> None:
    # Given acme, which imported once (and so holds accounts*.csv), and a new file of acme's
    s3.put(site.import_bucket, "accounts-1.csv", CSV)
    assert scan_job(services, [])("acme") == "done"
    s3.put(site.import_bucket, "accounts-2.csv", CSV)
    # When a site edited by hand to import acc*.csv from the same bucket is scanned
    hand_write(services, SiteConfig(site_id="evil", import_bucket=site.import_bucket,
                                    base_filename="acc.csv"))
    assert scan_job(services, [])("evil") == "refused"
    # Then acme's file was left alone, and acme still imports it
    assert "accounts-2.csv" in keys(s3, site.import_bucket)
    assert "overlaps site acme's" in (services.statuses.read("evil", "scan").last_error or "")
    assert services.store.latest_number("evil") == 0
    assert scan_job(services, [])("acme") == "done"
    assert "accounts-2.csv" not in keys(s3, site.import_bucket)


def test_an_export_edited_onto_another_sites_export_is_refused(
        services: Services, s3: S3, site: SiteConfig, import_bucket: str) -> None:
    # Given acme exported revision 1
    write_revision(services.store, "acme", 1, services.clock.now_s() - 2 * 86400, [1700000000])
    assert export_job(services, [])("acme") == "done"
    export = site.export_bucket or ""
    exported = s3.read_bytes(export, "revisions/1.json")
    # When a site edited by hand to export into acme's place runs its export
    hand_write(services, SiteConfig(site_id="evil", import_bucket=import_bucket,
                                    base_filename="e.csv", export_bucket=export))
    write_revision(services.store, "evil", 1, services.clock.now_s() - 2 * 86400, [1])
    assert export_job(services, [])("evil") == "refused"
    # Then acme's files are as acme's export wrote them
    assert s3.read_bytes(export, "revisions/1.json") == exported


def test_a_hand_written_site_whose_locations_nobody_holds_works_and_is_claimed(
        env: Env, services: Services, s3: S3, import_bucket: str) -> None:
    # Given a site.json written by hand, in a place nobody holds
    config = SiteConfig(site_id="manual", import_bucket=import_bucket,
                        base_filename="accounts.csv")
    hand_write(services, config)
    s3.put(import_bucket, "accounts-1.csv", CSV)
    # When the fleet scans it, it imports
    assert scan_job(services, [])("manual") == "done"
    assert services.store.latest_number("manual") == 1
    # And its location is claimed for it from then on
    assert {c.site for c in services.claims.holders(Locations.of(config).all)} == {"manual"}
    result = invoke_cli(env, "sites", "add", "other", "--import-bucket", import_bucket,
                        "--base-filename", "accounts-2.csv", "--allow-empty", "--yes")
    assert result.returncode == 2 and "overlaps site manual's" in result.stderr


def test_an_edit_after_a_verified_run_is_verified_again(
        services: Services, s3: S3, site: SiteConfig, import_bucket: str) -> None:
    # Given acme holding its location, and beta verified once in a free place
    assert scan_job(services, [])("acme") == "done"
    beta = SiteConfig(site_id="beta", import_bucket=import_bucket, base_filename="b.csv")
    hand_write(services, beta)
    assert scan_job(services, [])("beta") == "done"
    # When beta is edited by hand into acme's place (the memo of its last check is fresh)
    hand_write(services, replace(beta, base_filename="accounts.csv"))
    s3.put(import_bucket, "accounts-1.csv", CSV)
    # Then the new configuration is checked, and refused
    assert scan_job(services, [])("beta") == "refused"
    assert "accounts-1.csv" in keys(s3, import_bucket)


def test_drain_reports_a_refused_site_as_a_failure_in_one_line(
        env: Env, services: Services, s3: S3, site: SiteConfig) -> None:
    store = services.settings.store_bucket
    hand_write(services, SiteConfig(site_id="evil", import_bucket=store,
                                    base_filename="sites/acme/site.json.csv"))
    assert invoke_cli(env, "enqueue", "scan", "evil").returncode == 0
    drained = invoke_cli(env, "drain", "--timeout", "30")
    assert drained.returncode == 1
    lines: list[Any] = [line for line in drained.stderr.splitlines() if "evil" in line]
    assert len(lines) == 1 and "refused: the import bucket" in lines[0], drained.stderr


def test_preview_of_a_site_edited_into_the_store_bucket_reads_nothing(
        env: Env, services: Services, s3: S3, site: SiteConfig) -> None:
    store = services.settings.store_bucket
    s3.put(store, "sites/acme/export/l.csv", CSV)
    hand_write(services, SiteConfig(site_id="evil", import_bucket=store,
                                    base_filename="sites/acme/export/l.csv"))
    result = invoke_cli(env, "sites", "preview", "evil")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"bucketbridge: error: the import bucket {store} is bucketbridge's "
                             "store bucket: no site may import from it or export to it\n")
