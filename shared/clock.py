"""The clock, injected everywhere time matters so tests can control it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now_s(self) -> float:
        """Wall-clock time, Unix seconds (UTC)."""
        ...

    def monotonic_s(self) -> float:
        """A monotonic reading for measuring durations and budgets."""
        ...


class SystemClock:
    def now_s(self) -> float:
        return time.time()

    def monotonic_s(self) -> float:
        return time.monotonic()


class FrozenClock:
    """A clock for tests: stands still until advanced."""

    def __init__(self, now_s: float = 1_700_000_000.0) -> None:
        self._now_s = now_s
        self._mono_s = 0.0

    def now_s(self) -> float:
        return self._now_s

    def monotonic_s(self) -> float:
        return self._mono_s

    def advance(self, seconds: float) -> None:
        self._now_s += seconds
        self._mono_s += seconds


def utc_datetime(unix_s: float) -> datetime:
    return datetime.fromtimestamp(unix_s, tz=UTC)


def iso_utc(unix_s: float) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, to the second: ``2024-01-31T12:00:00Z``."""
    return utc_datetime(unix_s).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_utc(text: str) -> float:
    """Unix seconds of an ISO 8601 timestamp; a missing zone means UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
