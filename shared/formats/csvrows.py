"""The import CSV format (Kissmetrics compatible) and its mapping to export lines.  Pure.

Columns: ``Identity`` (required), ``Timestamp`` (Unix seconds UTC; required except on alias
rows), ``Event``, ``Alias`` and ``Prop:<Name>``.  A row with ``Event`` is an event with its
properties; a row with properties and no event is a property set; a row with ``Alias`` is an
alias (``_p2``).  Column names are matched without regard to case or surrounding spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import BadFile
from shared.formats.times import MAX_TIMESTAMP_S, timestamp_problem

MAX_FIELD_BYTES = 64 * 1024
_PROP_PREFIX = "prop:"
_KNOWN = frozenset({"identity", "timestamp", "event", "alias"})
# A Timestamp with more significant digits than this is out of range whatever it says: checked
# before ``int()``, which refuses (ValueError) strings over 4,300 digits and is quadratic below.
_MAX_TIMESTAMP_DIGITS = len(str(MAX_TIMESTAMP_S * 1000))
_SHOWN_CHARS = 40  # of a cell quoted in a reason: a huge cell never makes a huge report


class RowRejected(Exception):
    """This row is skipped and reported; the rest of the file goes on."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code  # a small fixed vocabulary, used as a metric label
        self.reason = reason


@dataclass(frozen=True)
class Columns:
    """Positions of the known columns in a file's header."""

    width: int
    identity: int
    timestamp: int | None
    event: int | None
    alias: int | None
    props: tuple[tuple[int, str], ...]

    @property
    def names(self) -> list[str]:
        out = ["Identity"]
        if self.timestamp is not None:
            out.append("Timestamp")
        if self.event is not None:
            out.append("Event")
        if self.alias is not None:
            out.append("Alias")
        out.extend(f"Prop:{name}" for _, name in self.props)
        return out


def parse_header(cells: list[str]) -> Columns:
    """Validate a header row; raise ``BadFile`` with a specific reason when it cannot be used."""
    if not cells or all(not c.strip() for c in cells):
        raise BadFile("file is empty: no header row")
    if any("\x00" in c for c in cells):
        raise BadFile("not a CSV text file: the first line contains binary data")
    normal = [c.strip().lower() for c in cells]
    known = [n for n in normal if n in _KNOWN or n.startswith(_PROP_PREFIX)]
    if not known:
        shown = ",".join(c.strip() for c in cells[:4])[:80]
        raise BadFile(f"no header row: the first line ({shown!r}) names none of the columns "
                      "Identity, Timestamp, Event, Alias, Prop:<Name>")
    _refuse_duplicates(cells, normal)
    if "identity" not in normal:
        raise BadFile("header has no Identity column")
    if "timestamp" not in normal and "alias" not in normal:
        raise BadFile("header has no Timestamp column (only an alias file, with an Alias "
                      "column, may leave it out)")
    props: list[tuple[int, str]] = []
    for i, (raw, name) in enumerate(zip(cells, normal, strict=True)):
        if name.startswith(_PROP_PREFIX):
            prop = raw.strip()[len(_PROP_PREFIX):].strip()
            if not prop:
                raise BadFile(f"header column {i + 1} is 'Prop:' without a property name")
            if prop.startswith("_"):
                raise BadFile(f"property name {prop!r} is reserved (names may not start with _)")
            props.append((i, prop))

    def index(name: str) -> int | None:
        return normal.index(name) if name in normal else None

    return Columns(width=len(cells), identity=normal.index("identity"),
                   timestamp=index("timestamp"), event=index("event"), alias=index("alias"),
                   props=tuple(props))


def _refuse_duplicates(cells: list[str], normal: list[str]) -> None:
    """``BadFile`` naming both columns when two header cells name one column or property
    (``Prop:Plan`` and ``prop: Plan`` are one property): one value would silently win."""
    first: dict[str, int] = {}
    for i, name in enumerate(normal):
        if name.startswith(_PROP_PREFIX):
            key = _PROP_PREFIX + name[len(_PROP_PREFIX):].strip()
        elif name in _KNOWN:
            key = name
        else:
            continue
        if key in first:
            j = first[key]
            raise BadFile(f"header columns {j + 1} ({cells[j].strip()!r}) and {i + 1} "
                          f"({cells[i].strip()!r}) name the same "
                          f"{'property' if key.startswith(_PROP_PREFIX) else 'column'}")
        first[key] = i


def parse_timestamp(raw: str) -> int:
    """Whole Unix seconds in the accepted range, or ``RowRejected`` saying why not."""
    text = raw.strip()
    if not text:
        raise RowRejected("timestamp", "missing Timestamp")
    if not text.isascii() or not text.isdigit():
        raise RowRejected("timestamp",
                          f"Timestamp {text[:_SHOWN_CHARS]!r} is not whole Unix seconds")
    if len(text) > _MAX_TIMESTAMP_DIGITS:  # (rare: the usual Timestamp goes straight on)
        text = text.lstrip("0") or "0"
        if len(text) > _MAX_TIMESTAMP_DIGITS:
            raise RowRejected("timestamp", f"Timestamp of {len(text)} digits is out of range")
    value = int(text)
    problem = timestamp_problem(value)
    if problem is not None:
        raise RowRejected("timestamp", f"Timestamp {value} is {problem}")
    return value


def row_to_line(cells: list[str], columns: Columns, *, import_time_s: int) -> dict[str, Any]:
    """Map one data row to its export line, or raise ``RowRejected`` with the reason.

    Keys come in the order ``_p, _t, _n, _p2`` then properties in header order; empty values are
    left out.  Property values stay strings: CSV carries no types.  An alias row without a
    Timestamp gets ``import_time_s`` (the time of the import, whole Unix seconds) as its ``_t``.
    """
    if len(cells) != columns.width:
        raise RowRejected("fields", f"expected {columns.width} fields, found {len(cells)}")
    identity = cells[columns.identity].strip()
    if not identity:
        raise RowRejected("identity", "missing Identity")
    alias = cells[columns.alias].strip() if columns.alias is not None else ""
    event = cells[columns.event].strip() if columns.event is not None else ""
    if alias and event:
        raise RowRejected("event_and_alias", "a row may have an Event or an Alias, not both")
    line: dict[str, Any] = {"_p": identity}
    raw_t = cells[columns.timestamp] if columns.timestamp is not None else ""
    # Alias rows may leave out the timestamp; the line still needs one.
    line["_t"] = import_time_s if alias and not raw_t.strip() else parse_timestamp(raw_t)
    if event:
        line["_n"] = event
    if alias:
        line["_p2"] = alias
    for i, name in columns.props:
        value = cells[i]
        if value:
            line[name] = value
    if len(line) == 2:  # _p and _t alone
        raise RowRejected("empty", "row has no Event, Alias or property values")
    return line


def row_kind(line: dict[str, Any]) -> str:
    """``event``, ``alias`` or ``properties``: what a mapped line does."""
    if "_n" in line:
        return "event"
    if "_p2" in line:
        return "alias"
    return "properties"
