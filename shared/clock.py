"""The clock, injected everywhere time matters so tests can control it."""

from __future__ import annotations

import time
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
