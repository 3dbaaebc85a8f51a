"""The tests' gzip bombs inflate to exactly the bytes they were built of."""

from __future__ import annotations

import gzip

import pytest

from tests.bombs import MiB, gzip_stream, repeated


@pytest.mark.parametrize(("head", "piece", "tail"), [
    (b"Identity,Timestamp,Event\n", b"\n", b"u1,1700000001,E1\n"),
    (b"Identity,Timestamp,Event\n", b"\r\n", b""),
    (b"h\nu1,", b"x", b"y"),
    (b"h\n", b"ab,c\n", b"\n"),  # a piece that does not divide a MiB
])
def test_a_bomb_inflates_to_its_parts(head: bytes, piece: bytes, tail: bytes) -> None:
    bomb = gzip_stream(repeated(head, piece, 8 * MiB, tail))
    assert len(bomb) < 64 * 1024
    assert gzip.decompress(bomb) == b"".join(repeated(head, piece, 8 * MiB, tail))


def test_pieces_that_differ_are_packed_one_by_one() -> None:
    parts = [b"a" * MiB, b"b" * MiB, b"a" * MiB, b"a" * MiB, b"a" * MiB, b"c" * 10, b"a" * MiB]
    assert gzip.decompress(gzip_stream(iter(parts))) == b"".join(parts)
