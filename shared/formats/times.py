"""Time as the formats write it: Unix seconds, ISO 8601 in UTC, and the range an event may have.

Pure functions; the current time always comes from the injected ``shared.clock.Clock``.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Unix seconds between 1970 and 2100; larger values are nearly always milliseconds.
MAX_TIMESTAMP_S = 4_102_444_800


def utc_datetime(unix_s: float) -> datetime:
    return datetime.fromtimestamp(unix_s, tz=UTC)


def iso_utc(unix_s: float) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, to the second: ``2024-01-31T12:00:00Z``."""
    return utc_datetime(unix_s).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc_ms(unix_s: float) -> str:
    """ISO 8601 in UTC to the millisecond, ``2024-01-31T12:00:00.250Z``: for events whose
    order within a second matters (a job's last error against its last success)."""
    return utc_datetime(unix_s).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso_utc(text: str) -> float:
    """Unix seconds of an ISO 8601 timestamp; a missing zone means UTC.  ``ValueError`` if
    ``text`` is not one."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def timestamp_problem(value: int) -> str | None:
    """Why ``value`` (Unix seconds) cannot be an event's ``_t``; ``None`` when it can."""
    if value < 0 or value > MAX_TIMESTAMP_S:
        hint = " (milliseconds?)" if value > MAX_TIMESTAMP_S * 100 else ""
        return f"out of range{hint}"
    return None
