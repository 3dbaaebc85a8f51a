"""``bucketbridge sites …``: register, inspect, pause and resume sites."""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from datetime import UTC, datetime

import click
import orjson
from rich.console import Console
from rich.table import Table

from producers.context import AppContext
from producers.output import console as make_console
from shared.errors import BadFile, BucketMissing, SiteExists, UserError
from shared.formats.names import validate_site_id
from shared.imports.preview import Preview, preview_file
from shared.imports.sitefiles import matching_files
from shared.store.s3 import S3
from shared.store.sites import SiteConfig

pass_app = click.make_pass_decorator(AppContext)


def render_preview(console: Console, preview: Preview) -> None:
    table = Table(title=f"First rows of {preview.key}", title_justify="left")
    for name in ("Row", "Kind", "Identity", "Time (UTC)", "Event / Alias", "Properties"):
        table.add_column(name, overflow="fold")
    for row in preview.rows:
        if row.line is None:
            table.add_row(str(row.record), "[red]rejected[/red]", "", "", "", row.reason or "")
            continue
        line = row.line
        t = line.get("_t")
        when = datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S") if t else ""
        props = ", ".join(f"{k}={v}" for k, v in line.items() if not k.startswith("_"))
        name = line.get("_n") or (f"→ {line['_p2']}" if "_p2" in line else "")
        table.add_row(str(row.record), row.kind, str(line["_p"]), when, str(name), props)
    console.print(table)
    console.print(f"Columns: {', '.join(preview.columns.names)}")


def _load_preview(s3: S3, site: SiteConfig) -> tuple[Preview, int]:
    files = matching_files(s3, site)
    if not files:
        exts = " or ".join(f"{site.pattern.folder}{site.pattern.stem}*{e}"
                           for e in site.pattern.extensions)
        raise UserError(f"no file matching {exts} in s3://{site.import_bucket}")
    try:
        return preview_file(s3, site.import_bucket, files[0]), len(files)
    except BadFile as exc:
        raise UserError(f"{files[0].key} cannot be imported: {exc.reason}") from None


def _reachable(app: AppContext, config: SiteConfig) -> S3:
    """The site's access, once its buckets answered with it.  A bucket that does not exist
    was mistyped (``UserError``); one that exists but refuses us is ``AccessDenied``."""
    s3 = app.services.access.for_site(config)
    try:
        s3.check_bucket(config.import_bucket)
        if config.export_bucket:
            s3.check_bucket(config.export_bucket)
    except BucketMissing as exc:
        raise UserError(str(exc)) from None
    return s3


@click.group()
def sites() -> None:
    """Register and manage sites."""


@sites.command("add")
@click.argument("site")
@click.option("--import-bucket", required=True, help="Bucket the site's CSV files arrive in.")
@click.option("--base-filename", required=True, help="Base name, e.g. accounts.csv.")
@click.option("--export-bucket", default=None, help="Bucket to export revisions to.")
@click.option("--export-prefix", default="", help="Key prefix inside the export bucket.")
@click.option("--role-arn", default=None, help="Role to assume for this site's buckets.")
@click.option("--external-id", default=None, help="External id for --role-arn.")
@click.option("--yes", is_flag=True, help="Activate without asking for confirmation.")
@pass_app
def add(app: AppContext, site: str, import_bucket: str, base_filename: str,
        export_bucket: str | None, export_prefix: str, role_arn: str | None,
        external_id: str | None, yes: bool) -> None:
    """Check a site's bucket and files, preview its first file, and activate it."""
    config = SiteConfig(site_id=site, import_bucket=import_bucket, base_filename=base_filename,
                        export_bucket=export_bucket, export_prefix=export_prefix,
                        role_arn=role_arn, external_id=external_id)
    svc = app.services
    if svc.sites.exists(site):
        raise SiteExists(f"site {site} exists already")
    s3 = _reachable(app, config)
    preview, count = _load_preview(s3, config)
    console = make_console()
    render_preview(console, preview)
    console.print(f"{count} file(s) waiting in s3://{import_bucket}; files are imported in "
                  "byte order of their names.")
    if not yes:
        if not sys.stdin.isatty():
            raise UserError("confirmation needed: run in a terminal or pass --yes")
        click.confirm(f"Activate site {site}?", abort=True)
    svc.sites.create(config)
    console.print(f"Site {site} is active; the scheduler publishes its first scan on its next "
                  "tick (or run: bucketbridge enqueue scan " f"{site}).")


@sites.command("preview")
@click.argument("site")
@pass_app
def preview(app: AppContext, site: str) -> None:
    """Show the events and properties the next file would import."""
    svc = app.services
    config = svc.sites.get(validate_site_id(site))
    p, count = _load_preview(svc.access.for_site(config), config)
    console = make_console()
    render_preview(console, p)
    console.print(f"{count} file(s) waiting.")


@sites.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_sites(app: AppContext, as_json: bool) -> None:
    """List registered sites."""
    configs = list(app.services.sites.all())
    if as_json:
        click.echo(orjson.dumps([asdict(c) for c in configs]).decode())
        return
    table = Table()
    for name in ("Site", "State", "Import", "Export"):
        table.add_column(name)
    for c in configs:
        export = f"s3://{c.export_bucket}/{c.export_prefix}" if c.export_bucket else "-"
        table.add_row(c.site_id, "paused" if c.paused else "active",
                      f"s3://{c.import_bucket}/{c.base_filename}", export)
    make_console().print(table)


@sites.command("update")
@click.argument("site")
@click.option("--export-bucket", default=None, help="Start exporting to this bucket.")
@click.option("--export-prefix", default=None, help="Key prefix inside the export bucket.")
@click.option("--no-export", is_flag=True, help="Stop exporting (what was exported stays).")
@click.option("--role-arn", default=None, help="Role to assume for this site's buckets.")
@click.option("--external-id", default=None, help="External id for --role-arn.")
@click.option("--no-role", is_flag=True, help="Use the fleet's own credentials again.")
@pass_app
def update(app: AppContext, site: str, export_bucket: str | None, export_prefix: str | None,
           no_export: bool, role_arn: str | None, external_id: str | None,
           no_role: bool) -> None:
    """Change how an existing site is exported and reached; checks the buckets first."""
    if no_export and (export_bucket or export_prefix is not None):
        raise UserError("--no-export goes alone, without --export-bucket or --export-prefix")
    if no_role and (role_arn or external_id):
        raise UserError("--no-role goes alone, without --role-arn or --external-id")
    svc = app.services
    current = svc.sites.get(validate_site_id(site))
    changes: dict[str, object] = {}
    if export_bucket is not None:
        changes["export_bucket"] = export_bucket
    if export_prefix is not None:
        changes["export_prefix"] = export_prefix
    if no_export:
        changes.update(export_bucket=None, export_prefix="")
    if role_arn is not None or external_id is not None:
        changes.update(role_arn=role_arn, external_id=external_id)
    if no_role:
        changes.update(role_arn=None, external_id=None)
    if not changes:
        raise UserError("nothing to change: give --export-bucket, --export-prefix, "
                         "--no-export, --role-arn/--external-id or --no-role")
    wanted = replace(current, **changes)  # type: ignore[arg-type]  # validated by SiteConfig
    _reachable(app, wanted)
    updated = svc.sites.update(site, lambda c: replace(c, **changes))  # type: ignore[arg-type]
    click.echo(orjson.dumps(asdict(updated), option=orjson.OPT_INDENT_2).decode())


@sites.command("show")
@click.argument("site")
@pass_app
def show(app: AppContext, site: str) -> None:
    """Print a site's configuration as JSON."""
    config = app.services.sites.get(validate_site_id(site))
    click.echo(orjson.dumps(asdict(config), option=orjson.OPT_INDENT_2).decode())


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
