"""Which sites a new object belongs to, without reading every site per event.

Sites' import locations are recorded per bucket in the store (``claims/buckets/<bucket>.json``,
``shared.store.claims``).  The listener keeps each bucket's document and checks its ETag again
after ``cache_s``; a key is matched against each import claim with the scan's own pattern
(``FilePattern.matches``).  A matched site's configuration is read (and kept ``cache_s``) to
skip a paused site and to act only for a claim that is live: the configuration names exactly
that location.  So an event costs no S3 request while the copies are fresh, and a bucket costs
one ``HEAD`` per ``cache_s`` while events arrive for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.clock import Clock
from shared.errors import SiteConfigError, SiteNotFound
from shared.formats.locations import ImportLocation
from shared.store.claims import ClaimStore, Locations, bucket_claims_key
from shared.store.s3 import S3
from shared.store.sites import SiteConfig, SiteRegistry

logger = logging.getLogger(__name__)


@dataclass
class _Bucket:
    imports: list[tuple[str, ImportLocation]]  # (site, location) of every import claim
    etag: str | None
    checked_at_s: float


@dataclass
class _Site:
    config: SiteConfig | None
    read_at_s: float


class SiteLookup:
    def __init__(self, s3: S3, store_bucket: str, claims: ClaimStore, sites: SiteRegistry,
                 clock: Clock, cache_s: float) -> None:
        self.s3 = s3
        self.store_bucket = store_bucket
        self.claims = claims
        self.sites = sites
        self.clock = clock
        self.cache_s = cache_s
        self._buckets: dict[str, _Bucket] = {}
        self._sites: dict[str, _Site] = {}

    def sites_for(self, bucket: str, key: str) -> list[str]:
        """The active sites (not paused, holding a live claim) that import ``key`` of
        ``bucket``."""
        out = []
        for site, location in self._imports(bucket):
            if location.pattern.matches(key) and self._active(site, location):
                out.append(site)
        return out

    def _imports(self, bucket: str) -> list[tuple[str, ImportLocation]]:
        now_s = self.clock.monotonic_s()
        cached = self._buckets.get(bucket)
        if cached is not None and now_s - cached.checked_at_s < self.cache_s:
            return cached.imports
        info = self.s3.head(self.store_bucket, bucket_claims_key(bucket))
        etag = info.etag if info is not None else None
        if cached is not None and cached.etag == etag:
            cached.checked_at_s = now_s
            return cached.imports
        claims, etag = self.claims.bucket_claims(bucket) if info is not None else ([], None)
        imports = [(c.site, c.location) for c in claims
                   if isinstance(c.location, ImportLocation)]
        self._buckets[bucket] = _Bucket(imports, etag, now_s)
        logger.info("bucket=%s holds %d import location(s)", bucket, len(imports))
        return imports

    def _active(self, site: str, location: ImportLocation) -> bool:
        config = self._config(site)
        if config is None or config.paused:
            return False
        return Locations.of(config).imports == location

    def _config(self, site: str) -> SiteConfig | None:
        now_s = self.clock.monotonic_s()
        cached = self._sites.get(site)
        if cached is not None and now_s - cached.read_at_s < self.cache_s:
            return cached.config
        try:
            config: SiteConfig | None = self.sites.get(site)
        except SiteNotFound:
            config = None
        except SiteConfigError as exc:
            logger.warning("site=%s configuration unreadable; its events are dropped: %s",
                           site, exc)
            config = None
        self._sites[site] = _Site(config, now_s)
        return config
