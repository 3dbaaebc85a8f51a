"""Sharded JSON documents in the store bucket: a map of site -> entry split over a fixed number
of objects, so reading the whole fleet costs one request per shard, not one per site.

Each shard is changed by read-modify-write with a conditional put (``If-Match`` on the ETag
read, ``If-None-Match: *`` for a new shard): two writers never lose each other's change; the
loser reads again and reapplies its own.  A reader that keeps the shards in memory re-reads
them with ``If-None-Match``: an unchanged shard costs a request and no transfer.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from shared.errors import ObjectMissing, PermanentError, PreconditionFailed
from shared.store.s3 import S3

logger = logging.getLogger(__name__)

_UPDATE_ATTEMPTS = 8

Entries = dict[str, Any]
# A change of one shard's entries; returns False when nothing changed (nothing is written).
Change = Callable[[Entries], bool]


def shard_of(site: str, shards: int) -> int:
    return zlib.crc32(site.encode("utf-8")) % shards


@dataclass
class Shard:
    number: int
    etag: str | None  # None: the shard does not exist (yet)
    entries: Entries
    broken: bool = False  # it exists but could not be read: replaced whole


class ShardUnreadable(PermanentError):
    """A shard exists but is not a readable document (written by hand, or truncated)."""


class ShardedDocuments:
    def __init__(self, s3: S3, bucket: str, prefix: str, shards: int) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix  # e.g. "index/sites/"
        self.shards = shards

    def key(self, number: int) -> str:
        return f"{self.prefix}{number:03d}.json"

    def shard_of(self, site: str) -> int:
        return shard_of(site, self.shards)

    def _decode(self, number: int, data: bytes) -> Entries:
        try:
            raw = orjson.loads(data)
            entries = raw["entries"]
        except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
            raise ShardUnreadable(f"s3://{self.bucket}/{self.key(number)} is unreadable: "
                                  f"{exc}") from None
        if not isinstance(entries, dict):
            raise ShardUnreadable(f"s3://{self.bucket}/{self.key(number)} has no entries map")
        return entries

    def read(self, number: int, etag: str | None = None) -> Shard | None:
        """Shard ``number`` as stored now; ``None`` if ``etag`` is still its ETag.  A missing
        shard reads as empty (etag ``None``)."""
        try:
            found = self.s3.read_versioned(self.bucket, self.key(number), if_none_match=etag)
        except ObjectMissing:
            return Shard(number, None, {})
        if found is None:
            return None
        data, new_etag = found
        return Shard(number, new_etag, self._decode(number, data))

    def update(self, number: int, change: Change) -> bool:
        """Apply ``change`` to shard ``number``, retrying when another writer got there first;
        whether anything was written."""
        for _ in range(_UPDATE_ATTEMPTS):
            try:
                shard = self.read(number)
            except ShardUnreadable as exc:
                # A broken shard is replaced: everything in it can be rebuilt from its source.
                logger.warning("%s; replacing it", exc)
                shard = Shard(number, None, {}, broken=True)
            assert shard is not None
            if not change(shard.entries):
                return False
            body = orjson.dumps({"entries": shard.entries}, option=orjson.OPT_SORT_KEYS)
            try:
                if shard.broken:
                    self.s3.put(self.bucket, self.key(number), body,
                                content_type="application/json")
                elif shard.etag is None:
                    self.s3.put(self.bucket, self.key(number), body, if_none_match=True,
                                content_type="application/json")
                else:
                    self.s3.put(self.bucket, self.key(number), body, if_match=shard.etag,
                                content_type="application/json")
            except PreconditionFailed:
                continue
            return True
        raise PreconditionFailed(f"s3://{self.bucket}/{self.key(number)} kept changing under "
                                 "us; try again")

    def write(self, number: int, entries: Entries) -> None:
        """Replace shard ``number`` whole (a rebuild)."""
        self.s3.put(self.bucket, self.key(number),
                    orjson.dumps({"entries": entries}, option=orjson.OPT_SORT_KEYS),
                    content_type="application/json")

    def read_all(self, known: dict[int, Shard] | None = None) -> Iterator[Shard]:
        """Every existing shard: one listing, then one read per shard, except those whose
        ETag in the listing is still the one in ``known`` (a reader's copies, kept up to date
        here: read once consumed whole, a fleet that did not change costs the listing alone)."""
        listed: set[int] = set()
        for info in self.s3.list(self.bucket, self.prefix):
            name = info.key[len(self.prefix):]
            if not (name.endswith(".json") and name[:-5].isdigit()):
                continue
            number = int(name[:-5])
            if number >= self.shards:
                continue
            listed.add(number)
            copy = known.get(number) if known is not None else None
            if copy is not None and copy.etag == info.etag:
                yield copy
                continue
            shard = self.read(number)
            if shard is not None:
                if known is not None:
                    known[number] = shard
                yield shard
        if known is not None:
            for gone in known.keys() - listed:
                del known[gone]
