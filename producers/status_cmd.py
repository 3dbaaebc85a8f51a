"""``bucketbridge status SITE [--json]``."""

from __future__ import annotations

from typing import Any

import click
import orjson
from rich.table import Table

from producers.context import AppContext
from producers.output import console
from shared.exports.progress import export_status
from shared.formats.names import validate_site_id
from shared.imports.cursor import Revisions
from shared.imports.progress import import_status
from shared.services import Services

pass_app = click.make_pass_decorator(AppContext)


def site_status(svc: Services, site: str) -> dict[str, Any]:
    config = svc.sites.get(validate_site_id(site))
    imported = import_status(Revisions(svc.store, svc.tail_cache), svc.statuses, config,
                             svc.access.for_site(config))
    return {"site": site, "paused": config.paused, "import": imported,
            "export": export_status(svc.ledger, svc.statuses, config, imported["revisions"])}


def status_rows(status: dict[str, Any]) -> list[tuple[str, str]]:
    imp = status["import"]
    rows = [("state", "paused" if status["paused"] else "active")]
    if imp["bucket_error"]:
        rows.append(("import bucket", f"ERROR {imp['bucket_error']}"))
    else:
        rows.append(("backlog", f"{imp['backlog_files']} file(s), {imp['backlog_bytes']} bytes"))
    current = imp["current_file"]
    rows.append(("current file", f"{current} from record {imp['next_record']}" if current
                 else "-"))
    rows.append(("revisions", str(imp["revisions"])))
    rows.append(("last scan", f"{imp['last_scan_at'] or 'never'} ({imp['last_scan_outcome']})"
                 if imp["last_scan_at"] else "never"))
    rows.append(("last error", f"{imp['last_error']} at {imp['last_error_at']}"
                 if imp["last_error"] else "-"))
    exp = status["export"]
    if exp is None:
        rows.append(("export", "not configured"))
        return rows
    rows.append(("export to", f"s3://{exp['bucket']}/{exp['prefix']}"))
    rows.append(("export position", f"revision {exp['position']} of {exp['total_revisions']} "
                 f"({exp['exported_revisions']} exported, lag {exp['lag_revisions']})"))
    rows.append(("last export", f"{exp['last_run_at']} ({exp['last_run_outcome']})"
                 if exp["last_run_at"] else "never"))
    rows.append(("export error", f"{exp['last_error']} at {exp['last_error_at']}"
                 if exp["last_error"] else "-"))
    return rows


@click.command()
@click.argument("site")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: AppContext, site: str, as_json: bool) -> None:
    """Import backlog, current file, revisions and export position of a site."""
    data = site_status(app.services, site)
    if as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"site {site}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in status_rows(data):
        table.add_row(name, value)
    console().print(table)
