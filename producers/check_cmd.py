"""``bucketbridge check [--json]``: the preflight an operator runs after a deploy."""

from __future__ import annotations

import sys

import click
import orjson

from producers.context import AppContext
from shared.preflight import preflight

pass_app = click.make_pass_decorator(AppContext)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@pass_app
def check(app: AppContext, as_json: bool) -> None:
    """Check that the store enforces conditional writes, Redis evicts nothing, and the clock
    agrees with the store's."""
    svc = app.services
    checks = preflight(svc.store_s3, app.settings.store_bucket, svc.redis, svc.clock)
    ok = all(c.ok for c in checks)
    if as_json:
        click.echo(orjson.dumps({"ok": ok, "checks": [c.as_json() for c in checks]}).decode())
    else:
        for c in checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        for c in checks:
            if not c.ok:
                click.echo(f"bucketbridge: error: {c.name}: {c.detail}", err=True)
    if not ok:
        sys.exit(1)
