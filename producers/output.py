"""Human output of the CLI: rich tables on a terminal; on a pipe, tab-separated lines that
``cut``, ``sort``, ``grep`` and ``head`` take as they are (no box drawing, no width limit).

Also the help layout shared by every command group: full one-line summaries, never cut.
rich is imported only when something is printed, so ``--help`` stays light.

Every cell is customer text as far as this module knows: control characters are escaped
(``printable``) and rich markup is never read from it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click
import orjson

from shared.formats.printable import printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

# Rich renders (a rule, a table the command draws itself) are this wide on a pipe; text is
# never wrapped there.
PIPED_WIDTH = 240


def is_terminal() -> bool:
    return sys.stdout.isatty()


def console() -> Console:
    """A console that folds to the terminal, and never wraps or decorates piped output."""
    from rich.console import Console

    if is_terminal():
        return Console(highlight=False, soft_wrap=False)
    return Console(highlight=False, soft_wrap=True, no_color=True, emoji=False,
                   width=PIPED_WIDTH)


def section(title: str) -> None:
    """A heading: a rule across a terminal, ``== title ==`` on a pipe."""
    if is_terminal():
        console().rule(title)
    else:
        click.echo(f"== {title} ==")


def _cell(value: object) -> str:
    """One TSV cell: tabs and line breaks inside a value become spaces, other control
    characters are escaped."""
    return printable(" ".join(str(value).split())) if value is not None else ""


def _text(value: object) -> Text:
    """One cell of a rich table: escaped, and never read as markup."""
    from rich.text import Text

    return Text(printable("" if value is None else str(value)))


def print_table(columns: Sequence[str], rows: Iterable[Sequence[object]], *,
                title: str | None = None) -> None:
    """A table with a header row: boxed on a terminal, TSV (header first) on a pipe."""
    if not is_terminal():
        click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join(_cell(v) for v in row))
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_text(v) for v in row))
    console().print(table)


def print_fields(rows: Iterable[tuple[str, object]], *, title: str | None = None) -> None:
    """Name/value pairs: a two-column table on a terminal, ``name<TAB>value`` lines on a pipe."""
    if not is_terminal():
        for name, value in rows:
            click.echo(f"{name}\t{_cell(value)}")
        return
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(_text(name), _text(value))
    console().print(table)


def print_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def human_bytes(size_bytes: float | None) -> str:
    """``1.5 MB``: decimal units, as S3's console shows sizes."""
    if size_bytes is None:
        return "-"
    from rich.filesize import decimal

    return str(decimal(int(size_bytes)))


def human_duration(seconds: float) -> str:
    """``45s``, ``3m 05s``, ``2h 10m``, ``3d 4h``: two units at most."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


class HelpGroup(click.Group):
    """A command group whose ``--help`` lists each command's whole first help line."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
