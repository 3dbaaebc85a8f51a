"""Seek points in gzip files: resuming a ``.csv.gz`` without inflating it from its first byte.

A seek point is where a deflate block starts on a whole byte, with the 32 KiB of output before
it (the window), the CRC-32 and length of the output so far, and the stored and decompressed
offsets (zlib's zran example; ``_gzseek.c`` finds them as the import's own reading passes).  From
one, ``ResumedGzip`` inflates the rest of the file: the member the point is in, with its CRC and
length checked at its end exactly as ``gzip`` checks them, then any later members through
``gzip.GzipFile`` itself, so a damaged file reads and fails the same way.

One point is kept per site (the newest, beside its cursor), encoded by ``encode``: about 10 KiB.
``decode`` accepts it only for the same file version, intact; anything else is ``None`` and the
file is read from its start, as before.  Pure: no I/O but the streams handed in.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from dataclasses import dataclass
from types import ModuleType
from typing import IO, TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from shared.formats._gzseek import Scanner

_gzseek: ModuleType | None
try:
    from shared.formats import _gzseek
except ImportError:  # built without a compiler: gzip files resume from their start
    _gzseek = None

WINDOW_BYTES = 32 * 1024
_MAGIC = b"bucketbridge-gzip-seek-point-1\n"
_TRUNCATED = "Compressed file ended before the end-of-stream marker was reached"
_CHUNK_BYTES = 128 * 1024


@dataclass(frozen=True)
class SeekPoint:
    key: str  # the source file and its version
    etag: str
    in_bytes: int  # stored offset where the point's deflate block starts
    out_bytes: int  # decompressed offset there
    crc: int  # CRC-32 of the member's output before the point
    window: bytes  # up to 32 KiB of output before the point


def encode(point: SeekPoint) -> bytes:
    window = zlib.compress(point.window, 6)
    head = orjson.dumps({"key": point.key, "etag": point.etag, "in": point.in_bytes,
                         "out": point.out_bytes, "crc": point.crc,
                         "window_crc": zlib.crc32(point.window)})
    return _MAGIC + head + b"\n" + window


def decode(data: bytes, key: str, etag: str, before_byte: int) -> SeekPoint | None:
    """The point in ``data`` if it is one of ``key`` at ``etag``, at or before the
    decompressed offset ``before_byte``, and intact; else ``None``."""
    if not data.startswith(_MAGIC):
        return None
    head, sep, packed = data[len(_MAGIC):].partition(b"\n")
    try:
        fields = orjson.loads(head)
        window = zlib.decompress(packed)
        point = SeekPoint(key=fields["key"], etag=fields["etag"], in_bytes=int(fields["in"]),
                          out_bytes=int(fields["out"]), crc=int(fields["crc"]), window=window)
        window_crc = int(fields["window_crc"])
    except (orjson.JSONDecodeError, zlib.error, KeyError, TypeError, ValueError):
        return None
    if (not sep or point.key != key or point.etag != etag or zlib.crc32(window) != window_crc
            or not 0 < point.out_bytes <= before_byte or point.in_bytes <= 0
            or len(window) != min(WINDOW_BYTES, point.out_bytes)):
        return None
    return point


class PointFinder:
    """Follows the stored bytes of one gzip file (``feed``, as a stream tap, inflating them as
    they pass) and says, at a checkpoint, the newest seek point at or before it
    (``point_at``).  It keeps the last 32 points, at least 256 KiB of output apart, in a fixed
    1 MiB: a checkpoint further behind the stored reads than that gets no point (its next run
    reads from the start)."""

    def __init__(self, key: str, etag: str, start: SeekPoint | None = None) -> None:
        self.key = key
        self.etag = etag
        self._scanner: Scanner | None = None
        if _gzseek is not None:
            self._scanner = (_gzseek.Scanner(0, 0, 0, None) if start is None else
                             _gzseek.Scanner(start.in_bytes, start.out_bytes, start.crc,
                                             start.window))

    def feed(self, data: bytes) -> None:
        if self._scanner is not None:
            self._scanner.feed(data)

    def point_at(self, out_bytes: int) -> SeekPoint | None:
        """The newest point at or before the decompressed offset ``out_bytes``."""
        found = self._scanner.point(out_bytes) if self._scanner is not None else None
        if found is None:
            return None
        in_bytes, point_out, crc, window = found
        return SeekPoint(self.key, self.etag, in_bytes, point_out, crc, window)


class ResumedGzip(io.RawIOBase):
    """The decompressed rest of a gzip file from ``point``; ``stored`` is the file's stored
    bytes from ``point.in_bytes`` on.  Reads and fails as ``gzip.GzipFile`` would from there."""

    def __init__(self, stored: IO[bytes], point: SeekPoint) -> None:
        self._stored = stored
        self._inflate = zlib.decompressobj(-zlib.MAX_WBITS, zdict=point.window)
        self._crc = point.crc
        self._size = point.out_bytes
        self._rest: gzip.GzipFile | None = None
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def _read(self, size: int) -> bytes:
        while True:
            if self._rest is not None:
                return self._rest.read(size)
            if self._ended:
                return b""
            if self._inflate.eof:
                self._member_end()
                continue
            data = self._inflate.unconsumed_tail or self._stored.read(_CHUNK_BYTES)
            out = self._inflate.decompress(data, size)
            if out:
                self._crc = zlib.crc32(out, self._crc)
                self._size += len(out)
                return out
            if not data:
                raise EOFError(_TRUNCATED)

    def _member_end(self) -> None:
        """The member's trailer, checked as ``gzip`` checks it, then what follows it."""
        tail = self._inflate.unused_data
        while len(tail) < 8:
            more = self._stored.read(_CHUNK_BYTES)
            if not more:
                raise EOFError(_TRUNCATED)
            tail += more
        crc, isize = struct.unpack("<II", tail[:8])
        if crc != self._crc:
            raise gzip.BadGzipFile(f"CRC check failed {hex(crc)} != {hex(self._crc)}")
        if isize != self._size & 0xFFFFFFFF:
            raise gzip.BadGzipFile("Incorrect length of data produced")
        rest = tail[8:].lstrip(b"\x00")
        while not rest:  # gzip allows zero padding between and after members
            more = self._stored.read(_CHUNK_BYTES)
            if not more:
                self._ended = True
                return
            rest = more.lstrip(b"\x00")
        self._rest = gzip.GzipFile(fileobj=_Prepended(rest, self._stored), mode="rb")

    def close(self) -> None:
        if self._rest is not None:
            self._rest.close()
        super().close()


class _Prepended(io.RawIOBase):
    """``head`` then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)
