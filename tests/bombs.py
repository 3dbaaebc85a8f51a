"""Gzip files that inflate far beyond their size (bombs), built piece by piece in the tests.

Deflating a GiB costs seconds of CPU however fast the level, so a bomb's repeated piece is
deflated only until its packed bytes can be reused.  Each part ends its deflate block on a
byte boundary (a sync flush); bytes packed right after an identical part of at least deflate's
window (32 KiB) inflate against a history of that part alone, so they inflate to the part
again wherever they are repeated after it, and a different part packed next refers only to
that same history.  The gzip trailer's CRC and size cover every byte, so the file inflates to
its parts and fails as any gzip does; unlike one deflated whole, its blocks end every part.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

MiB = 1024 * 1024
# Repeats of a piece this long leave deflate's whole window (32 KiB) made of the piece.
_STEADY_MIN_BYTES = 32 * 1024
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # deflate, no name, no mtime


def gzip_stream(parts: Iterator[bytes]) -> bytes:
    """One gzip member of ``parts`` (a bomb never sits whole in memory)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = bytearray(_GZIP_HEADER)
    crc = size = 0
    previous = packed = b""
    steady = False
    for part in parts:
        crc = zlib.crc32(part, crc)
        size += len(part)
        if steady and part == previous:
            out += packed
            continue
        new = packer.compress(part) + packer.flush(zlib.Z_SYNC_FLUSH)
        steady = len(part) >= _STEADY_MIN_BYTES and part == previous and new == packed
        previous, packed = part, new
        out += new
    out += packer.flush()
    out += struct.pack("<II", crc, size & 0xFFFFFFFF)
    return bytes(out)


def repeated(head: bytes, piece: bytes, total_bytes: int, tail: bytes = b"") -> Iterator[bytes]:
    """``head``, then ``piece`` repeated to about ``total_bytes`` (in 1 MiB parts), then
    ``tail``."""
    yield head
    chunk = piece * (MiB // len(piece))
    for _ in range(total_bytes // len(chunk)):
        yield chunk
    yield tail
