"""What makes an idle site's scan and export cheap: disposable facts kept in Redis.

- *The import cursor is settled*: the site's last scan ended with nothing left to import and
  its newest CSV revision ends its file.  While that holds, a scan that finds no matching file
  has nothing to recover either, and skips reading the cursor from the store.  A scan that
  finds files clears it before it writes anything, so a scan killed half-way never leaves it
  behind; only a scan that ends settled sets it again.
- *The export files are current*: ``index.csv`` and ``status.csv`` in the customer's bucket
  were written with this content.  An export run with nothing new then writes nothing there.

Losing either (a flushed Redis) costs the reads or the rewrite once, nothing else.
"""

from __future__ import annotations

from shared.fleet.hints import RevisionTailCache
from shared.fleet.redisconn import RedisClient, best_effort

_WHAT = "idle memo"

SETTLED_TTL_S = 7 * 86400
EXPORT_FILES_TTL_S = 7 * 86400  # written again at least weekly, whatever the memo says


class IdleMemo:
    def __init__(self, client: RedisClient | None, store_bucket: str) -> None:
        self.client = client
        self.store_bucket = store_bucket

    @classmethod
    def beside(cls, hints: RevisionTailCache) -> IdleMemo:
        """The memo in the Redis (and for the store) of ``hints``."""
        return cls(hints.client, hints.store_bucket)

    def _key(self, kind: str, site: str) -> str:
        return f"bucketbridge:cache:{kind}:{self.store_bucket}:{site}"

    def _get(self, kind: str, site: str) -> bytes | None:
        found = best_effort(self.client, _WHAT, site, None,
                            lambda c: c.get(self._key(kind, site)))
        return found if isinstance(found, bytes) else None

    def _set(self, kind: str, site: str, value: str, ttl_s: int) -> None:
        best_effort(self.client, _WHAT, site, None,
                    lambda c: c.set(self._key(kind, site), value, ex=ttl_s))

    def _delete(self, kind: str, site: str) -> None:
        best_effort(self.client, _WHAT, site, None, lambda c: c.delete(self._key(kind, site)))

    # -- scan ---------------------------------------------------------------------------------

    def scan_settled(self, site: str) -> bool:
        return self._get("scan-settled", site) is not None

    def settle_scan(self, site: str) -> None:
        self._set("scan-settled", site, "1", SETTLED_TTL_S)

    def unsettle_scan(self, site: str) -> None:
        self._delete("scan-settled", site)

    # -- export -------------------------------------------------------------------------------

    def export_file_current(self, site: str, name: str, fingerprint: str) -> bool:
        """Whether export file ``name`` (index.csv, status.csv) was written with this content."""
        return self._get(f"export-file-{name}", site) == fingerprint.encode()

    def export_file_written(self, site: str, name: str, fingerprint: str) -> None:
        self._set(f"export-file-{name}", site, fingerprint, EXPORT_FILES_TTL_S)

    def forget(self, site: str) -> None:
        self._delete("scan-settled", site)
        for name in ("index.csv", "status.csv"):
            self._delete(f"export-file-{name}", site)
