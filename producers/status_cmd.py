"""``bucketbridge status SITE [--json]``."""

from __future__ import annotations

from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from producers.context import AppContext
from shared.sites import validate_site_id
from shared.sitestatus import import_status

pass_app = click.make_pass_decorator(AppContext)


def site_status(app: AppContext, site: str) -> dict[str, Any]:
    svc = app.services
    config = svc.sites.get(validate_site_id(site))
    status: dict[str, Any] = {"site": site, "paused": config.paused,
                              "import": import_status(svc, config)}
    return status


def _rows(status: dict[str, Any]) -> list[tuple[str, str]]:
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
    return rows


@click.command()
@click.argument("site")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: AppContext, site: str, as_json: bool) -> None:
    """Import backlog, current file, revisions and export position of a site."""
    data = site_status(app, site)
    if as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"site {site}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in _rows(data):
        table.add_row(name, value)
    Console(highlight=False).print(table)
