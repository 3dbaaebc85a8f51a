"""The site index: every site's configuration, copied into a few sharded documents beside them
(``index/sites/NNN.json``), with a small change marker (``index/sites/changed.json``).

``sites/<site>/site.json`` stays the system of record; the index lets the scheduler and the
fleet view read the whole fleet with one request per shard instead of two per site, and tell
an unchanged fleet with one conditional read of the marker per tick.

Every change of a site through ``SiteRegistry`` refreshes its entry: inside the shard's
conditional read-modify-write it reads the site's ``site.json`` again, so whichever refresh
writes the shard last wrote what ``site.json`` held after the last change (two operators
changing one site at once cannot leave the older configuration in the index).  Then it
rewrites the marker.  A site whose ``site.json`` cannot be read or accepted is indexed with
the reason (the scheduler skips it; the fleet view shows it as misconfigured).  A missing or
unreadable index is rebuilt from a listing of ``sites/``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from shared.errors import ObjectMissing, SiteConfigError
from shared.formats.names import is_site_id
from shared.store.s3 import S3
from shared.store.shards import Entries, ShardedDocuments
from shared.store.sites import SiteConfig, site_config_key

logger = logging.getLogger(__name__)

INDEX_PREFIX = "index/sites/"
INDEX_SHARDS = 64
MARKER_KEY = f"{INDEX_PREFIX}changed.json"

IndexedSite = SiteConfig | str  # a configuration, or why the site's site.json is unusable


def _entry(config: IndexedSite) -> dict[str, Any]:
    if isinstance(config, str):
        return {"error": config}
    return {"config": asdict(config)}


def _indexed(site: str, raw: Any) -> IndexedSite | None:
    """An index entry read back; ``None`` for one that is not an entry at all."""
    if not isinstance(raw, dict):
        return None
    if "error" in raw:
        return str(raw["error"])
    try:
        config = SiteConfig.from_dict(raw.get("config"))
    except SiteConfigError as exc:
        return f"{exc}"
    if config.site_id != site:
        return f"unreadable site configuration: it names site {config.site_id!r}"
    return config


def indexed_sites(entries: Entries) -> Iterator[tuple[str, IndexedSite]]:
    for site, raw in entries.items():
        found = _indexed(site, raw)
        if found is not None:
            yield site, found


@dataclass(frozen=True)
class Marker:
    etag: str


class SiteIndex:
    def __init__(self, s3: S3, bucket: str, shards: int = INDEX_SHARDS) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.docs = ShardedDocuments(s3, bucket, INDEX_PREFIX, shards)

    # -- reading the system of record ---------------------------------------------------------

    def read_site(self, site: str) -> IndexedSite | None:
        """``site``'s configuration as ``site.json`` holds it now; ``None`` when it has none."""
        try:
            data = self.s3.read_bytes(self.bucket, site_config_key(site))
        except ObjectMissing:
            return None
        try:
            config = SiteConfig.from_json(data)
        except SiteConfigError as exc:
            return f"{exc}"
        if config.site_id != site:
            return f"unreadable site configuration: it names site {config.site_id!r}"
        return config

    def site_ids(self) -> Iterator[str]:
        """Every site with a folder under ``sites/`` (one listing request per 1,000)."""
        for prefix in self.s3.list_prefixes(self.bucket, "sites/"):
            site = prefix[len("sites/"):].rstrip("/")
            if is_site_id(site):
                yield site

    # -- writing ------------------------------------------------------------------------------

    def refresh(self, site: str) -> None:
        """Make ``site``'s entry what its ``site.json`` holds now, then mark the index
        changed."""

        def change(entries: Entries) -> bool:
            found = self.read_site(site)
            before = entries.get(site)
            if found is None:
                entries.pop(site, None)
            else:
                entries[site] = _entry(found)
            return entries.get(site) != before

        if self.docs.update(self.docs.shard_of(site), change):
            self.mark_changed()

    def mark_changed(self) -> None:
        self.s3.put(self.bucket, MARKER_KEY, orjson.dumps({"change": uuid.uuid4().hex}),
                    content_type="application/json")

    def rebuild(self) -> int:
        """Write the whole index from a listing of ``sites/`` and every ``site.json``; returns
        how many sites it holds.  Costs two requests per site: only when the index is missing
        or unreadable (or an operator asks for it)."""
        shards: dict[int, Entries] = {n: {} for n in range(self.docs.shards)}
        count = 0
        for site in self.site_ids():
            found = self.read_site(site)
            if found is None:
                continue
            shards[self.docs.shard_of(site)][site] = _entry(found)
            count += 1
        for number, entries in shards.items():
            self.docs.write(number, entries)
        self.mark_changed()
        logger.info("site index rebuilt: %d site(s)", count)
        return count

    # -- reading the index --------------------------------------------------------------------

    def marker(self, known: Marker | None) -> Marker | None:
        """The change marker if it changed since ``known`` (one conditional request);
        ``ObjectMissing`` when there is no index."""
        found = self.s3.read_versioned(self.bucket, MARKER_KEY,
                                       if_none_match=known.etag if known else None)
        if found is None:
            return None
        return Marker(found[1])

    def read_all(self) -> dict[str, IndexedSite]:
        """Every indexed site: one listing and one read per shard (the fleet view's read)."""
        out: dict[str, IndexedSite] = {}
        for shard in self.docs.read_all():
            out.update(indexed_sites(shard.entries))
        return out

