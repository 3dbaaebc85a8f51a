"""Which revisions an export cycle may take: the cutoff vocabulary (one parser for the CLI and
the workers) and the lookback window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.errors import UserError
from shared.formats.times import iso_utc, parse_iso_utc

YESTERDAY = "yesterday"  # revisions written before 00:00 UTC today: the scheduled cycle
NOW = "now"


def parse_cutoff(text: str) -> str | None:
    """A cutoff as a message carries it: ``None`` for the default (``yesterday``), ``now``, or
    an ISO 8601 time normalised to UTC; ``UserError`` for anything else."""
    if text == YESTERDAY:
        return None
    if text == NOW:
        return NOW
    try:
        return iso_utc(parse_iso_utc(text))
    except (ValueError, OverflowError):
        raise UserError(f"invalid --cutoff {text!r}: use yesterday, now or an ISO 8601 time "
                        "such as 2024-05-01T00:00:00Z") from None


def resolve_cutoff(cutoff: str | None, now_s: float) -> float:
    """Unix seconds before which revisions are exportable, for a cutoff ``parse_cutoff``
    gave."""
    if cutoff in (None, YESTERDAY):
        today = datetime.fromtimestamp(now_s, tz=UTC).replace(hour=0, minute=0, second=0,
                                                              microsecond=0)
        return today.timestamp()
    if cutoff == NOW:
        return now_s
    try:
        return parse_iso_utc(cutoff)
    except ValueError:
        raise UserError(f"invalid cutoff {cutoff!r}") from None


def lookback_start(now_s: float, lookback_days: int) -> float:
    """Revisions written before this are too old to export by default."""
    return (datetime.fromtimestamp(now_s, tz=UTC) - timedelta(days=lookback_days)).timestamp()
