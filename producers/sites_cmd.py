"""``bucketbridge sites …``: register, inspect, change, pause, resume and remove sites.

Every change of a site's locations (``add``, ``update``, ``remove``) checks first, shows what
it would do, asks for confirmation (``--yes`` on a pipe) and does nothing with ``--dry-run``.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import click
import orjson

from producers.context import AppContext
from producers.notifications_cmd import notifications
from producers.output import HelpGroup, print_json
from producers.sitechanges import (
    changes,
    check_claims,
    export_restart,
    new_external_id,
    public,
    release,
    show_external_id,
    shown,
)
from producers.siteprobe import pattern_text, probe, reachable, show_probe
from producers.sites_list import list_sites
from shared.errors import (
    AccessDenied,
    BucketbridgeError,
    SiteExists,
    SiteIndexBehind,
    UserError,
)
from shared.fleet.activity import running
from shared.fleet.idlememo import IdleMemo
from shared.fleet.isolationmemo import IsolationMemo
from shared.fleet.leases import EXPORT_LEASE, IMPORT_LEASE
from shared.fleet.reportmemo import ReportMemo
from shared.formats.names import validate_site_id
from shared.formats.printable import printable
from shared.imports.cursor import Revisions
from shared.services import Services
from shared.store.claims import Locations
from shared.store.sites import SiteConfig

pass_app = click.make_pass_decorator(AppContext)

dry_run_option = click.option("--dry-run", is_flag=True,
                              help="Check and show what would be done; change nothing.")
yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
force_option = click.option("--force", is_flag=True,
                            help="Go on although the files cannot be imported as they are.")
allow_empty_option = click.option("--allow-empty", is_flag=True,
                                  help="Accept an import location without any file yet.")


def confirm(question: str, *, yes: bool, problem: str | None = None,
            force: bool = False) -> None:
    """Ask ``question`` (``--yes`` answers it); a ``problem`` must be accepted knowingly:
    ``--force``, or an interactive confirmation that names it."""
    interactive = sys.stdin.isatty()
    if problem and not force:
        if yes or not interactive:
            raise UserError(f"{problem}: fix the files, or pass --force to go on anyway")
        click.confirm(f"{problem}. {question.rstrip('?')} anyway?", default=False, abort=True)
        return
    if yes:
        return
    if not interactive:
        raise UserError("confirmation needed: run in a terminal or pass --yes")
    click.confirm(question, abort=True)


@click.group(cls=HelpGroup)
def sites() -> None:
    """Register and manage sites."""


@sites.result_callback()
@pass_app
def _index_followed(app: AppContext, /, *_results: object, **_options: object) -> None:
    """A change the site index could not follow is a failure the operator must hear of."""
    behind = app.services.sites.index_behind if app.has_services else {}
    if behind:
        site, why = next(iter(behind.items()))
        raise SiteIndexBehind(f"site {site} changed, but the site index could not follow "
                              f"({why}): the scheduler will not see it until `bucketbridge "
                              "sites reindex` succeeds")


sites.add_command(list_sites)
sites.add_command(notifications)


@sites.command("add")
@click.argument("site")
@click.option("--import-bucket", required=True, help="Bucket the site's CSV files arrive in.")
@click.option("--base-filename", required=True, help="Base name, e.g. accounts.csv.")
@click.option("--export-bucket", default=None, help="Bucket to export revisions to.")
@click.option("--export-prefix", default="", help="Key prefix inside the export bucket.")
@click.option("--role-arn", default=None, help="Role to assume for this site's buckets.")
@click.option("--external-id", default=None,
              help="External id for --role-arn (default: a new random one, shown once).")
@allow_empty_option
@force_option
@dry_run_option
@click.option("--yes", is_flag=True, help="Activate without asking for confirmation.")
@pass_app
def add(app: AppContext, site: str, import_bucket: str, base_filename: str,
        export_bucket: str | None, export_prefix: str, role_arn: str | None,
        external_id: str | None, allow_empty: bool, force: bool, dry_run: bool,
        yes: bool) -> None:
    """Check a site's buckets and files, preview its first file, and activate it."""
    if external_id is not None and role_arn is None:
        raise UserError("--external-id goes with --role-arn")
    generated = role_arn is not None and external_id is None
    if generated:
        external_id = new_external_id()
    config = SiteConfig(site_id=site, import_bucket=import_bucket, base_filename=base_filename,
                        export_bucket=export_bucket, export_prefix=export_prefix,
                        role_arn=role_arn, external_id=external_id)
    svc = app.services
    if svc.sites.exists(site):
        raise SiteExists(f"site {site} exists already")
    wanted = Locations.of(config)
    check_claims(svc, wanted)
    untrusted = None
    try:
        found = probe(reachable(svc.access, config), config, svc.clock)
    except AccessDenied as exc:
        if not generated:
            raise
        # The customer cannot trust an external id before it exists: register the site
        # paused, and say what to put in the role's trust policy.
        untrusted, found = str(exc), None
    if found is not None:
        show_probe(found, config, allow_empty=allow_empty)
    problem = found.problem() if found is not None else None
    if dry_run:
        if generated:
            click.echo("an external id would be generated for the role")
        if problem:
            click.echo(printable(f"problem: {problem} (--force would accept it)"))
        click.echo(f"dry run: site {site} would be registered; nothing changed")
        return
    question = f"Activate site {site}?"
    if untrusted is not None:
        click.echo(f"The role cannot be assumed yet ({untrusted}): site {site} will be "
                   "registered paused.")
        config = replace(config, paused=True)
        question = f"Register site {site}, paused?"
    confirm(question, yes=yes, problem=problem, force=force)
    added = svc.claims.hold(wanted)
    try:
        svc.sites.create(config)
    except BucketbridgeError:
        release(svc, site, [c.location for c in added])
        raise
    if generated and role_arn and external_id:
        show_external_id(role_arn, external_id)
    if config.paused:
        click.echo(f"Site {site} is registered, paused. Once the role trusts the external id, "
                   f"run: bucketbridge sites resume {site}")
        return
    first = "when its first file arrives" if found is None or not found.files \
        else "on its next tick"
    click.echo(f"Site {site} is active; the scheduler publishes its first scan {first} (or "
               f"run: bucketbridge enqueue scan {site}).")


@sites.command("preview")
@click.argument("site")
@click.option("--json", "as_json", is_flag=True, help="Print the files and the preview as JSON.")
@pass_app
def preview(app: AppContext, site: str, as_json: bool) -> None:
    """Show the events and properties the next file would import."""
    svc = app.services
    config = svc.sites.get(validate_site_id(site))
    check_claims(svc, Locations.of(config))  # a hand-edited site.json reads nobody else's files
    found = probe(svc.access.for_site(config), config, svc.clock)
    if as_json:
        print_json(found.as_json())
        return
    show_probe(found, config, allow_empty=False)
    problem = found.problem()
    if problem:
        raise UserError(problem)


def _unfinished_import(svc: Services, site: str) -> str | None:
    """The file whose import stopped part-way, as a problem a location change would cause."""
    cursor = Revisions(svc.store, svc.tail_cache).cursor(site)
    meta = cursor.meta
    if meta is None or meta.ends_file:
        return None
    return (f"the import of {meta.source_key} stopped at record {meta.record_end} (revision "
            f"{meta.number}); with the new location the rest of it is never imported and the "
            "file is reported as failed")


def _refuse_if_running(svc: Services, site: str, what: str) -> None:
    for run in running(svc.redis, site, (IMPORT_LEASE, EXPORT_LEASE)):
        raise UserError(f"an {run.job} of site {site} is running on {run.worker or '?'} since "
                        f"{run.since}: pause the site (bucketbridge sites pause {site}) and "
                        f"{what} once it stopped")


@sites.command("update")
@click.argument("site")
@click.option("--import-bucket", default=None, help="Take the site's files from this bucket.")
@click.option("--base-filename", default=None, help="New base name, e.g. accounts.csv.")
@click.option("--export-bucket", default=None, help="Start exporting to this bucket.")
@click.option("--export-prefix", default=None, help="Key prefix inside the export bucket.")
@click.option("--no-export", is_flag=True, help="Stop exporting (what was exported stays).")
@click.option("--re-export-all", is_flag=True,
              help="Accept that a moved export starts its new location from revision 1.")
@click.option("--role-arn", default=None, help="Role to assume for this site's buckets.")
@click.option("--external-id", default=None,
              help="External id for --role-arn (default: a new random one, shown once).")
@click.option("--no-role", is_flag=True, help="Use the fleet's own credentials again.")
@allow_empty_option
@force_option
@dry_run_option
@click.option("--yes", is_flag=True, help="Change the import location without asking.")
@pass_app
def update(app: AppContext, site: str, import_bucket: str | None, base_filename: str | None,
           export_bucket: str | None, export_prefix: str | None, no_export: bool,
           re_export_all: bool, role_arn: str | None, external_id: str | None, no_role: bool,
           allow_empty: bool, force: bool, dry_run: bool, yes: bool) -> None:
    """Change a site's locations or role, with the same checks as add."""
    if no_export and (export_bucket or export_prefix is not None):
        raise UserError("--no-export goes alone, without --export-bucket or --export-prefix")
    if no_role and (role_arn or external_id):
        raise UserError("--no-role goes alone, without --role-arn or --external-id")
    if external_id is not None and role_arn is None:
        raise UserError("--external-id goes with --role-arn")
    svc = app.services
    current = svc.sites.get(validate_site_id(site))
    generated = role_arn is not None and external_id is None
    changed = changes(import_bucket=import_bucket, base_filename=base_filename,
                      export_bucket=export_bucket, export_prefix=export_prefix,
                      no_export=no_export, role_arn=role_arn,
                      external_id=new_external_id() if generated else external_id,
                      no_role=no_role)
    wanted = replace(current, **changed)  # validated by SiteConfig
    locations = Locations.of(wanted)
    relocated = locations != Locations.of(current)
    if relocated:
        check_claims(svc, locations)
    moved = (wanted.import_bucket, wanted.pattern) != (current.import_bucket, current.pattern)
    problem = None
    try:
        s3 = reachable(svc.access, wanted)
    except AccessDenied as exc:
        if not generated or moved:
            raise
        click.echo(f"The role cannot be assumed yet ({exc}): site {site} will be paused.")
        changed["paused"] = True
        wanted = replace(wanted, paused=True)
    if moved:
        _refuse_if_running(svc, site, "change its import location")
        found = probe(s3, wanted, svc.clock)
        show_probe(found, wanted, allow_empty=allow_empty)
        problem = found.problem() or _unfinished_import(svc, site)
    restart = export_restart(svc, current, wanted)
    if dry_run:
        for name, value in changed.items():
            new = "(generated)" if name == "external_id" and generated else shown(name, value)
            click.echo(f"{name}: {shown(name, getattr(current, name))} -> {new}")
        if problem:
            click.echo(printable(f"problem: {problem} (--force would accept it)"))
        if restart:
            click.echo(f"note: {restart}")
        click.echo(f"dry run: site {site} would be changed; nothing changed")
        return
    if restart and not re_export_all:
        raise UserError(f"{restart}: pass --re-export-all to go on")
    if moved:
        confirm(f"Import site {site}'s files from s3://{wanted.import_bucket}/"
                f"{pattern_text(wanted)}?", yes=yes, problem=problem, force=force)
    added = svc.claims.hold(locations) if relocated else []
    try:
        updated = svc.sites.update(site, lambda c: replace(c, **changed))
    except BucketbridgeError:
        release(svc, site, [c.location for c in added])
        raise
    if relocated:
        still = set(locations.all)
        release(svc, site, [loc for loc in Locations.of(current).all if loc not in still])
    # A generated external id is shown this once (the customer's trust policy needs it).
    print_json(public(updated, reveal=generated))
    if updated.paused and not current.paused:
        click.echo(f"Once the role trusts the external id, run: bucketbridge sites resume "
                   f"{site}", err=True)


@sites.command("remove")
@click.argument("site")
@click.option("--purge-data", is_flag=True,
              help="Also delete the site's revisions, export ledger and statuses for good.")
@dry_run_option
@yes_option
@pass_app
def remove(app: AppContext, site: str, purge_data: bool, dry_run: bool, yes: bool) -> None:
    """Stop and unregister a site; its revisions are kept unless --purge-data."""
    svc = app.services
    config = svc.sites.get(validate_site_id(site))
    store = svc.settings.store_bucket
    prefix = f"sites/{site}/"
    revisions = svc.store.latest_number(site)
    if purge_data:
        _refuse_if_running(svc, site, "remove it")
    click.echo(f"site {site}: no more scans or exports are scheduled; queued messages for it "
               "are acked without work")
    export = f", export s3://{config.export_bucket}/{config.export_prefix}" \
        if config.export_bucket else ""
    click.echo(f"releases its locations: import s3://{config.import_bucket}/"
               f"{pattern_text(config)}{export}")
    if purge_data:
        click.echo(f"deletes its {revisions} revision(s), export ledger and statuses: "
                   f"s3://{store}/{prefix}")
    else:
        click.echo(f"keeps its {revisions} revision(s), export ledger and statuses in "
                   f"s3://{store}/{prefix} (--purge-data deletes them)")
    for run in running(svc.redis, site, (IMPORT_LEASE, EXPORT_LEASE)):
        click.echo(f"warning: an {run.job} of the site is running on {run.worker or '?'}; it "
                   "finishes its run", err=True)
    if dry_run:
        click.echo(f"dry run: site {site} would be removed; nothing changed")
        return
    question = (f"Remove site {site} and delete its {revisions} revision(s) for good?"
                if purge_data else f"Remove site {site}?")
    confirm(question, yes=yes)
    svc.sites.delete(site)
    _release_locations(svc, config)
    svc.tail_cache.forget(site)
    svc.tail_cache.forget_cursor(site)
    if purge_data:
        deleted = 0
        for info in list(svc.store_s3.list(store, prefix)):
            svc.store_s3.delete(store, info.key)
            deleted += 1
        click.echo(f"site {site} removed, {deleted} object(s) of its data deleted")
    else:
        click.echo(f"site {site} removed; its data stays in s3://{store}/{prefix}")


def _release_locations(svc: Services, config: SiteConfig) -> None:
    """Free the site's import and export locations (and its role and external id) for other
    sites.  A claim left behind (the release failed) lapses: its site is gone."""
    release(svc, config.site_id, Locations.of(config).all)
    IsolationMemo(svc.redis, svc.settings.store_bucket).forget(config.site_id)
    memo = ReportMemo(svc.redis, svc.settings.store_bucket)
    for job in ("scan", "export"):
        memo.forget(job, config.site_id)
    IdleMemo(svc.redis, svc.settings.store_bucket).forget(config.site_id)
    try:
        svc.fleet_status.forget(config.site_id)
    except BucketbridgeError as exc:  # a report: the fleet view skips unregistered sites
        click.echo(f"note: the fleet status summary still lists site {config.site_id}: {exc}",
                   err=True)


@sites.command("show")
@click.argument("site")
@pass_app
def show(app: AppContext, site: str) -> None:
    """Print a site's configuration as JSON."""
    config = app.services.sites.get(validate_site_id(site))
    click.echo(orjson.dumps(public(config), option=orjson.OPT_INDENT_2).decode())


@sites.command("pause")
@click.argument("site")
@pass_app
def pause(app: AppContext, site: str) -> None:
    """Stop scheduling work for a site (running work finishes its run)."""
    app.services.sites.set_paused(validate_site_id(site), True)
    click.echo(f"site {site} paused")


@sites.command("resume")
@click.argument("site")
@pass_app
def resume(app: AppContext, site: str) -> None:
    """Schedule work for a paused site again."""
    app.services.sites.set_paused(validate_site_id(site), False)
    click.echo(f"site {site} resumed")


@sites.command("reindex")
@pass_app
def reindex(app: AppContext) -> None:
    """Rebuild the site index from every site.json (after editing one by hand)."""
    count = app.services.index.rebuild()
    click.echo(f"site index rebuilt: {count} site(s); the scheduler follows within a tick")
