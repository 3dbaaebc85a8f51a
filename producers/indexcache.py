"""The scheduler's copy of the site index, kept in memory and followed at one request a tick.

Each tick reads the index's change marker with ``If-None-Match``: an unchanged fleet costs
that one request.  When it changed, one listing of the shards tells which ETags changed, and
only those shards are read (a change to one site: three requests).  A missing or unreadable
index is rebuilt from ``sites/``, so a new scheduler process, a new deployment or a damaged
index all reach the same state.
"""

from __future__ import annotations

import logging

from shared.errors import ObjectMissing
from shared.store.shards import Shard, ShardUnreadable
from shared.store.siteindex import IndexedSite, Marker, SiteIndex, indexed_sites

logger = logging.getLogger(__name__)


class IndexCache:
    def __init__(self, index: SiteIndex) -> None:
        self.index = index
        self.marker: Marker | None = None
        self.known: dict[int, Shard] = {}  # the shards as last read, by number
        self.shards: dict[int, dict[str, IndexedSite]] = {}
        self.sites: dict[str, IndexedSite] = {}

    def refresh(self) -> bool:
        """Follow the index; whether ``sites`` changed."""
        try:
            marker = self.index.marker(self.marker)
        except ObjectMissing:
            logger.warning("no site index in the store bucket: rebuilding it from sites/")
            self.index.rebuild()
            marker = self.index.marker(None)
        if marker is None:
            return False
        try:
            self._read_shards()
        except ShardUnreadable as exc:
            logger.warning("%s: rebuilding the site index from sites/", exc)
            self.index.rebuild()
            self.known.clear()
            marker = self.index.marker(None)
            self._read_shards()
        self.marker = marker
        merged: dict[str, IndexedSite] = {}
        for entries in self.shards.values():
            merged.update(entries)
        changed = merged != self.sites
        self.sites = merged
        return changed

    def _read_shards(self) -> None:
        """Parses again only the shards whose ETag changed (``known`` is updated as read)."""
        parsed = {n: shard.etag for n, shard in self.known.items() if n in self.shards}
        for shard in self.index.docs.read_all(self.known):
            if shard.number not in parsed or parsed[shard.number] != shard.etag:
                self.shards[shard.number] = dict(indexed_sites(shard.entries))
        for gone in self.shards.keys() - self.known.keys():
            del self.shards[gone]
