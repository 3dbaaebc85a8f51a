"""Seek points in gzip files: found while the file is read, resumed from, and refused when
they do not belong (pure: bytes in memory)."""

from __future__ import annotations

import functools
import gzip
import io
import random
import tracemalloc
from dataclasses import replace

import pytest

from shared.formats import gzseek
from shared.formats.gzseek import PointFinder, ResumedGzip, SeekPoint, decode, encode
from shared.formats.streams import TAPPED_READ_BYTES, open_stream
from tests.bombs import gzip_stream, repeated

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(gzseek._gzseek is None, reason="seek finder not built")]


def rows(n: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    return b"".join(f"u{rng.randint(0, 99_999)},{1_700_000_000 + i},Event {rng.choice('ABCDEFG')},"
                    f"{rng.random()}\n".encode() for i in range(n))


@functools.cache
def data() -> bytes:
    """200,000 varied rows: built once per test process, and only if a test reads them."""
    return rows(200_000)


@functools.cache
def gzipped(level: int) -> bytes:
    return gzip.compress(data(), level)


def read_from(gz: bytes, point: SeekPoint) -> bytes:
    stored = io.BufferedReader(io.BytesIO(gz[point.in_bytes:]))
    with io.BufferedReader(ResumedGzip(stored, point)) as resumed:
        return resumed.read()


def found(gz: bytes, at: int, chunk: int = 1 << 20) -> SeekPoint:
    finder = PointFinder("f.csv.gz", "etag")
    for i in range(0, len(gz), chunk):
        finder.feed(gz[i:i + chunk])
    point = finder.point_at(at)
    assert point is not None
    return point


@pytest.mark.parametrize("level", [1, 6, 9])
def test_a_point_found_while_reading_resumes_the_rest_exactly(level: int) -> None:
    # Given a two-member gzip file with zero padding after it
    gz = gzipped(level) + gzip.compress(b"second member\n") + b"\0\0\0"
    # When a point is asked for at 60% of the first member
    at = len(data()) * 6 // 10
    point = found(gz, at)
    # Then it lies at or before that offset, not far, and resumes to the same bytes
    assert at - 4 * 2**20 < point.out_bytes <= at
    assert len(point.window) == gzseek.WINDOW_BYTES
    assert read_from(gz, point) == data()[point.out_bytes:] + b"second member\n"


def test_a_finder_started_at_a_point_finds_later_points() -> None:
    gz = gzipped(9)
    first = found(gz, len(data()) // 3)
    finder = PointFinder("f.csv.gz", "etag", start=first)
    finder.feed(gz[first.in_bytes:])
    later = finder.point_at(len(data()) * 9 // 10)
    assert later is not None and first.out_bytes < later.out_bytes <= len(data()) * 9 // 10
    assert read_from(gz, later) == data()[later.out_bytes:]


def test_resumed_reads_fail_as_gzip_fails() -> None:
    gz = gzipped(9)
    point = found(gz, len(data()) // 2)
    # Truncated
    with pytest.raises(EOFError) as ours:
        read_from(gz[:-20], point)
    with pytest.raises(EOFError) as theirs:
        gzip.decompress(gz[:-20])
    assert str(ours.value) == str(theirs.value)
    # A wrong CRC in the trailer
    bad = bytearray(gz)
    bad[-8] ^= 1
    with pytest.raises(gzip.BadGzipFile) as crc:
        read_from(bytes(bad), point)
    assert str(crc.value).startswith("CRC check failed 0x")
    # Not gzip after the first member
    with pytest.raises(gzip.BadGzipFile) as magic:
        read_from(gz + b"PK", point)
    with pytest.raises(gzip.BadGzipFile) as magic_theirs:
        gzip.decompress(gz + b"PK")
    assert str(magic.value) == str(magic_theirs.value)


def test_a_point_is_refused_unless_it_belongs() -> None:
    gz = gzipped(9)
    point = found(gz, len(data()) // 2)
    encoded = encode(point)
    assert len(encoded) < 20_000
    assert decode(encoded, "f.csv.gz", "etag", point.out_bytes) == point
    assert decode(encoded, "f.csv.gz", "other-etag", point.out_bytes) is None
    assert decode(encoded, "g.csv.gz", "etag", point.out_bytes) is None
    assert decode(encoded, "f.csv.gz", "etag", point.out_bytes - 1) is None  # past the cursor
    assert decode(encoded[:-5], "f.csv.gz", "etag", point.out_bytes) is None  # damaged
    assert decode(b"junk", "f.csv.gz", "etag", point.out_bytes) is None
    forged = encode(replace(point, window=point.window[:-1] + b"!"))
    tampered = forged[:forged.index(b"\n", len(b"bucketbridge-gzip-seek-point-1\n"))] + \
        encoded[encoded.index(b"\n", len(b"bucketbridge-gzip-seek-point-1\n")):]
    assert decode(tampered, "f.csv.gz", "etag", point.out_bytes) is None


@pytest.mark.slow(5)
def test_a_finder_holds_a_fixed_memory_whatever_the_file() -> None:
    gz = gzip.compress(data() * 3, 1)  # the level changes nothing here but its cost
    tracemalloc.start()
    try:
        finder = PointFinder("f.csv.gz", "etag")
        for i in range(0, len(gz), 64 * 1024):
            finder.feed(gz[i:i + 64 * 1024])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * 2**20, peak
    # And it kept the newest points, not the first ones
    point = finder.point_at(len(data()) * 3)
    assert point is not None and point.out_bytes > len(data()) * 2


def test_a_finder_tapping_a_bomb_is_handed_it_a_little_at_a_time() -> None:
    # Given a gzip that inflates about 1,000 to 1 (256 MiB of newlines, about 256 KiB stored)
    gz = gzip_stream(repeated(b"h\n", b"\n", 256 * 2**20))
    tapped: list[int] = []
    # When a reader takes its first 8 MiB through a stream the finder taps
    with open_stream(io.BytesIO(gz), gzipped=None,
                     stored_tap=lambda data: tapped.append(len(data))) as opened:
        assert len(opened.file.read(8 * 2**20)) == 8 * 2**20
    # Then the tap saw small reads, not the bomb at once: what it inflates stays within a
    # few reads of what the reader needs
    assert max(tapped) <= TAPPED_READ_BYTES
    assert sum(tapped) <= 2 * TAPPED_READ_BYTES < len(gz)
