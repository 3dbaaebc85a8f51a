"""Any ``read(n)`` byte source under ``io``'s buffered readers, optionally counting or tapping
the bytes that pass (for progress and checksums).  Closing the reader closes the source."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Protocol


class ByteSource(Protocol):
    def read(self, size_bytes: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class RawSource(io.RawIOBase):
    def __init__(self, source: ByteSource, on_bytes: Callable[[int], None] | None = None,
                 tap: Callable[[bytes], object] | None = None) -> None:
        self._source = source
        self._on_bytes = on_bytes
        self._tap = tap

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            if self._on_bytes is not None:
                self._on_bytes(n)
            if self._tap is not None:
                self._tap(data)
        return n

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()
