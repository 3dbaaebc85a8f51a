"""What a change of a site's locations checks, claims and tells: shared by ``sites add``,
``update`` and ``remove``.

Locations are claimed in the store bucket (``shared.store.claims``) before site.json names
them, and released after it no longer does; a claim left behind by a failure lapses.  The
external id of a role is generated when none is given and printed once; every other output of
a configuration hides it.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict
from typing import Any

import click

from shared.errors import BucketbridgeError, UserError
from shared.formats.exportfiles import export_location
from shared.services import Services
from shared.store.claims import Location, Locations
from shared.store.sites import SiteConfig

HIDDEN = "(hidden)"


def new_external_id() -> str:
    """A random external id (160 bits), as AWS recommends for third-party access."""
    return secrets.token_hex(20)


def show_external_id(role_arn: str, external_id: str) -> None:
    click.echo(f"External id for {role_arn}: {external_id}")
    click.echo("(shown once: the role's trust policy must require it as sts:ExternalId)")


def check_claims(svc: Services, wanted: Locations) -> None:
    """Refuse early (before probing buckets) what ``hold`` would refuse; ``hold`` decides."""
    svc.claims.check(wanted)


def release(svc: Services, site: str, locations: list[Location]) -> None:
    """Give ``locations`` up; a failure only warns (the claims lapse by themselves)."""
    if not locations:
        return
    try:
        svc.claims.release(site, locations)
    except BucketbridgeError as exc:
        click.echo(f"warning: could not release claims of site {site}: {exc}", err=True)


def changes(*, import_bucket: str | None, base_filename: str | None,
            export_bucket: str | None, export_prefix: str | None, no_export: bool,
            role_arn: str | None, external_id: str | None, no_role: bool) -> dict[str, Any]:
    """The fields ``sites update`` changes; ``UserError`` when it changes nothing."""
    found: dict[str, Any] = {}
    if import_bucket is not None:
        found["import_bucket"] = import_bucket
    if base_filename is not None:
        found["base_filename"] = base_filename
    if export_bucket is not None:
        found["export_bucket"] = export_bucket
    if export_prefix is not None:
        found["export_prefix"] = export_prefix
    if no_export:
        found.update(export_bucket=None, export_prefix="")
    if role_arn is not None:
        found.update(role_arn=role_arn, external_id=external_id)
    if no_role:
        found.update(role_arn=None, external_id=None)
    if not found:
        raise UserError("nothing to change: give --import-bucket, --base-filename, "
                        "--export-bucket, --export-prefix, --no-export, "
                        "--role-arn/--external-id or --no-role")
    return found


def export_restart(svc: Services, current: SiteConfig, wanted: SiteConfig) -> str | None:
    """What moving the export means when it leaves the location the ledger belongs to: the
    new location starts from revision 1 (its own ledger); ``None`` when nothing restarts."""
    if wanted.export_bucket is None:
        return None
    new = export_location(wanted.export_bucket, wanted.export_prefix)
    old = (export_location(current.export_bucket, current.export_prefix)
           if current.export_bucket is not None else None)
    ledger = svc.ledger.load(current.site_id, old)
    owner = ledger.location or old
    if ledger.position == 0 or owner == new:
        return None
    return (f"site {current.site_id} exported up to revision {ledger.position} to "
            f"s3://{owner}; s3://{new} starts from revision 1 (every revision within the "
            "lookback is exported there again)")


def shown(name: str, value: object) -> str:
    """A field's value for a change summary."""
    return HIDDEN if name == "external_id" and value else repr(value)


def public(config: SiteConfig, *, reveal: bool = False) -> dict[str, Any]:
    """A configuration to print, its external id hidden unless ``reveal`` (the once it is
    made)."""
    out = asdict(config)
    if out.get("external_id") and not reveal:
        out["external_id"] = HIDDEN
    return out
