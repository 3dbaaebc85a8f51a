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


def test_a_different_piece_between_reused_ones_inflates_in_place() -> None:
    # Given repeats long enough for their packed bytes to be reused, a different piece, and
    # repeats again (reused again after the piece)
    a, b = b"a" * MiB, b"b" * MiB
    parts = [a] * 8 + [b"c" * 10] + [a] * 8 + [b] + [a] * 2
    bomb = gzip_stream(iter(parts))
    # Then the file inflates to the parts
    assert gzip.decompress(bomb) == b"".join(parts)
