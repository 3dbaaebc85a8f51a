"""The fleet's memory of sites whose locations were verified: a disposable hint in Redis.

Before it acts for a site, a job makes sure the site holds its locations (claims in the store
bucket, ``shared.store.claims``).  Once that held for a configuration, its fingerprint is kept
here for an hour, so a scan of an idle site does not read the claims every time.  Any change of
a location changes the fingerprint and is verified again; losing the hint costs a few reads.
"""

from __future__ import annotations

from shared.fleet.redisconn import RedisClient, best_effort

VERIFIED_TTL_S = 3600
_WHAT = "isolation memo"


class IsolationMemo:
    def __init__(self, client: RedisClient | None, store_bucket: str) -> None:
        self.client = client
        self.store_bucket = store_bucket

    def _key(self, site: str) -> str:
        return f"bucketbridge:cache:isolated:{self.store_bucket}:{site}"

    def verified(self, site: str, fingerprint: str) -> bool:
        found = best_effort(self.client, _WHAT, site, None,
                            lambda c: c.get(self._key(site)))
        return found == fingerprint.encode()

    def remember(self, site: str, fingerprint: str) -> None:
        best_effort(self.client, _WHAT, site, None,
                    lambda c: c.set(self._key(site), fingerprint, ex=VERIFIED_TTL_S))

    def forget(self, site: str) -> None:
        best_effort(self.client, _WHAT, site, None, lambda c: c.delete(self._key(site)))
