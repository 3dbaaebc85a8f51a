"""What ``sites add`` and ``sites update`` check before a site's import location is used: the
buckets answer, which files match, and what the first importable one would produce.

A bad first file is a warning when a later file is valid (the fleet moves it aside with a
report and goes on); no importable file at all, or a preview where every row is rejected, is
a problem the operator must accept knowingly (``--force``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click

from producers.output import human_bytes, print_table
from shared.clock import Clock
from shared.errors import BadFile, BucketMissing, UserError
from shared.formats.printable import printable
from shared.imports.preview import Preview, preview_file
from shared.imports.sitefiles import matching_files
from shared.store.access import SiteAccess
from shared.store.s3 import S3, ObjectInfo
from shared.store.sites import SiteConfig

# Files looked at for one that can be imported, in byte order.
PROBE_FILES = 5


@dataclass
class Probe:
    files: list[ObjectInfo]
    preview: Preview | None = None  # of the first file that can be imported
    bad: list[tuple[str, str]] = field(default_factory=list)  # (key, reason) before it

    @property
    def all_rejected(self) -> bool:
        return self.preview is not None and bool(self.preview.rows) and all(
            row.line is None for row in self.preview.rows)

    def as_json(self) -> dict[str, Any]:
        preview = None
        if self.preview is not None:
            preview = {"key": self.preview.key, "columns": list(self.preview.columns.names),
                       "rows": [{"record": r.record, "kind": r.kind, "line": r.line,
                                 "reason": r.reason} for r in self.preview.rows]}
        return {"files": [{"key": f.key, "size_bytes": f.size_bytes} for f in self.files],
                "unimportable": [{"key": k, "reason": r} for k, r in self.bad],
                "preview": preview, "problem": self.problem()}

    def problem(self) -> str | None:
        """What should stop an activation, unless forced."""
        if self.files and self.preview is None:
            looked = "; ".join(f"{key}: {reason}" for key, reason in self.bad)
            return f"none of the first {len(self.bad)} file(s) can be imported ({looked})"
        if self.preview is not None and self.all_rejected:
            reasons = sorted({row.reason or "rejected" for row in self.preview.rows})
            return (f"every previewed row of {self.preview.key} was rejected "
                    f"({'; '.join(reasons)})")
        return None


def pattern_text(site: SiteConfig) -> str:
    return " or ".join(f"{site.pattern.folder}{site.pattern.stem}*{e}"
                       for e in site.pattern.extensions)


def reachable(access: SiteAccess, config: SiteConfig) -> S3:
    """The site's access, once its buckets answered with it.  A bucket that does not exist
    was mistyped (``UserError``); one that exists but refuses us is ``AccessDenied``."""
    s3 = access.for_site(config)
    try:
        s3.check_bucket(config.import_bucket)
        if config.export_bucket:
            s3.check_bucket(config.export_bucket)
    except BucketMissing as exc:
        raise UserError(str(exc)) from None
    return s3


def probe(s3: S3, site: SiteConfig, clock: Clock) -> Probe:
    found = Probe(files=matching_files(s3, site))
    for info in found.files[:PROBE_FILES]:
        try:
            found.preview = preview_file(s3, site.import_bucket, info, clock)
            return found
        except BadFile as exc:
            found.bad.append((info.key, exc.reason))
    return found


def render_preview(preview: Preview) -> None:
    rows = []
    for row in preview.rows:
        if row.line is None:
            rows.append((row.record, "rejected", "", "", "", row.reason or ""))
            continue
        line = row.line
        t = line.get("_t")
        when = datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S") if t else ""
        props = ", ".join(f"{k}={v}" for k, v in line.items() if not k.startswith("_"))
        name = line.get("_n") or (f"→ {line['_p2']}" if "_p2" in line else "")
        rows.append((row.record, row.kind, line["_p"], when, name, props))
    click.echo(f"First rows of {printable(preview.key)}")
    print_table(("Row", "Kind", "Identity", "Time (UTC)", "Event / Alias", "Properties"), rows)
    click.echo(printable(f"Columns: {', '.join(preview.columns.names)}"))


def show_probe(found: Probe, site: SiteConfig, *, allow_empty: bool) -> None:
    """Print the probe: warnings for bad first files, the preview, what waits.  ``UserError``
    when no file matches and ``allow_empty`` is not given."""
    if not found.files:
        where = f"{pattern_text(site)} in s3://{site.import_bucket}"
        if not allow_empty:
            raise UserError(f"no file matching {where} (pass --allow-empty to register the "
                            "site before its first upload)")
        click.echo(f"No file matching {where} yet: the site waits for its first file.")
        return
    for key, reason in found.bad:
        click.echo(printable(f"warning: {key} cannot be imported: {reason} (the fleet will move "
                             "it to failed_imports/ with a report and go on with the next file)"),
                   err=True)
    if found.preview is not None:
        render_preview(found.preview)
    size = human_bytes(sum(f.size_bytes for f in found.files))
    click.echo(f"{len(found.files)} file(s) ({size}) waiting in s3://{site.import_bucket}; "
               "files are imported in byte order of their names.")
