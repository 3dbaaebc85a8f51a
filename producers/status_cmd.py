"""``bucketbridge status SITE [--json] [--watch]``: what is happening for a site now."""

from __future__ import annotations

import time
from contextlib import suppress

import click

from producers.context import AppContext
from producers.output import console, is_terminal, print_fields, print_json
from producers.params import Seconds

# producers.sitestatus reaches the store (boto3) and the fleet (redis, dramatiq): imported by
# the functions that use it, so that `status --help` and usage errors cost nothing.

pass_app = click.make_pass_decorator(AppContext)


def _watch(app: AppContext, site: str, interval_s: float, as_json: bool) -> None:
    """Refresh until Ctrl-C: in place on a terminal, one block per refresh on a pipe."""
    from producers.sitestatus import site_status, status_rows

    if as_json or not is_terminal():
        with suppress(KeyboardInterrupt):
            while True:
                data = site_status(app.services, site)
                if as_json:
                    print_json(data)
                else:
                    print_fields(status_rows(data))
                    click.echo("")
                time.sleep(interval_s)
        return
    from rich.live import Live
    from rich.table import Table

    def render() -> Table:
        rows = status_rows(site_status(app.services, site))
        table = Table(title=f"site {site} (every {interval_s:g}s; Ctrl-C to stop)",
                      show_header=False, title_justify="left")
        table.add_column("what", style="bold")
        table.add_column("value", overflow="fold")
        for name, value in rows:
            table.add_row(name, value)
        return table

    with suppress(KeyboardInterrupt), Live(render(), console=console(),
                                           auto_refresh=False) as live:
        while True:
            time.sleep(interval_s)
            live.update(render(), refresh=True)


@click.command()
@click.argument("site")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the same fields).")
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C.")
@click.option("--interval", "interval_s", type=Seconds(0.5, 3600), default=2.0,
              show_default=True, help="Seconds between refreshes with --watch.")
@pass_app
def status(app: AppContext, site: str, as_json: bool, watch: bool, interval_s: float) -> None:
    """What a site is doing now: running, queued, next runs, progress, errors, export."""
    from producers.sitestatus import site_status, status_rows

    if watch:
        site_status(app.services, site)  # a mistake (no such site) fails before the loop
        _watch(app, site, interval_s, as_json)
        return
    data = site_status(app.services, site)
    if as_json:
        print_json(data)
        return
    print_fields(status_rows(data), title=f"site {site}")
