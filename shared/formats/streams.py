"""Byte streams as every reader here sees them: buffered, line-readable, gzip inflated on the fly.

The one place that knows how a stored object becomes the bytes a parser reads: the buffer
sizes, gzip (by name or by its magic bytes), the UTF-8 byte order mark, skipping forward in a
stream that cannot seek, and counting or tapping the bytes that pass (for progress and
checksums).  Closing what ``open_stream`` returns closes every layer and the source.  Pure: the
source is anything with ``read(n)`` and ``close()``.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable
from types import TracebackType
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from shared.formats.gzseek import SeekPoint

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
READ_BUFFER_BYTES = 1024 * 1024
# A stored tap inflates what it sees (the gzip seek-point finder), so it is handed the stored
# bytes in reads this small: a megabyte of a gzip bomb inflates to a GiB, which in one read
# would cost seconds of CPU ahead of the reader and past the run's budget.  (The finder can
# still run a few reads ahead, up to about 130 MiB of a bomb's output: far enough that its
# newest points lie past the reader's checkpoint, which then resumes from the start.)
TAPPED_READ_BYTES = 64 * 1024
# What a broken gzip stream raises while it is read: gzip.BadGzipFile is an OSError, a
# truncated stream an EOFError, a corrupt deflate block a zlib.error.
GZIP_ERRORS = (OSError, EOFError, zlib.error)


class ByteSource(Protocol):
    def read(self, size_bytes: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class RawSource(io.RawIOBase):
    """Any ``read(n)`` source under ``io``'s buffered readers, optionally counting
    (``on_bytes``) or seeing (``tap``) the bytes that pass, ``max_read_bytes`` at most at a
    time.  Closing it closes the source."""

    def __init__(self, source: ByteSource, on_bytes: Callable[[int], None] | None = None,
                 tap: Callable[[bytes], object] | None = None,
                 max_read_bytes: int | None = None) -> None:
        self._source = source
        self._on_bytes = on_bytes
        self._tap = tap
        self._max_read_bytes = max_read_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = len(buffer)
        if self._max_read_bytes is not None:
            size = min(size, self._max_read_bytes)
        data = self._source.read(size)
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


class Opened:
    """A source's decompressed bytes, as a buffered file with a C ``readline``; closing it
    closes every layer beneath (use ``with``)."""

    def __init__(self, file: IO[bytes], gzipped: bool, layers: list[IO[bytes]]) -> None:
        self.file = file
        self.gzipped = gzipped
        self._layers = layers

    def close(self) -> None:
        for layer in self._layers:
            layer.close()

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def open_stream(source: ByteSource, *, gzipped: bool | None,
                on_bytes: Callable[[int], None] | None = None,
                tap: Callable[[bytes], object] | None = None,
                stored_tap: Callable[[bytes], object] | None = None,
                resume_from: SeekPoint | None = None) -> Opened:
    """``source`` decompressed: ``gzipped=None`` looks at the magic bytes.  ``on_bytes``
    counts the stored bytes read; ``tap`` sees every decompressed byte, ``stored_tap`` every
    stored one.  ``resume_from``: ``source`` is a gzip file's stored bytes from that seek point
    on (``shared.formats.gzseek``), and the stream starts at the point's decompressed offset."""
    stored_read_bytes = READ_BUFFER_BYTES if stored_tap is None else TAPPED_READ_BYTES
    stored = io.BufferedReader(RawSource(source, on_bytes, stored_tap, stored_read_bytes),
                               buffer_size=stored_read_bytes)
    layers: list[IO[bytes]] = [stored]
    try:
        if gzipped is None:
            gzipped = stored.peek(len(GZIP_MAGIC))[:len(GZIP_MAGIC)] == GZIP_MAGIC
        top: IO[bytes] = stored
        if resume_from is not None:
            from shared.formats.gzseek import ResumedGzip

            top = io.BufferedReader(ResumedGzip(stored, resume_from),
                                    buffer_size=READ_BUFFER_BYTES)
            layers.insert(0, top)
        elif gzipped:
            # GzipFile.readline runs in Python; a BufferedReader on top makes it C.
            inflater = gzip.GzipFile(fileobj=stored, mode="rb")
            top = io.BufferedReader(RawSource(inflater), buffer_size=READ_BUFFER_BYTES)
            layers.insert(0, top)
        if tap is not None:
            top = io.BufferedReader(RawSource(top, tap=tap), buffer_size=READ_BUFFER_BYTES)
            layers.insert(0, top)
    except BaseException:
        for layer in layers:
            layer.close()
        raise
    return Opened(top, gzipped, layers)


def skip_bytes(file: IO[bytes], count_bytes: int) -> int:
    """Read and drop up to ``count_bytes`` (to go forward in a stream that cannot seek, such
    as gzip); returns how many there were: fewer means the stream ended first.  A broken gzip
    stream raises one of ``GZIP_ERRORS``."""
    left = count_bytes
    while left > 0:
        chunk = file.read(min(left, READ_BUFFER_BYTES))
        if not chunk:
            break
        left -= len(chunk)
    return count_bytes - left
