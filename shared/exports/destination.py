"""The customer's export location, and the two files bucketbridge keeps current there.

``index.csv`` and ``status.csv`` are rewritten from the ledger after the revision files they
name were written and the ledger committed, so an index row never names a file that is not
there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from shared.formats.exportfiles import (
    export_key,
    export_location,
    format_index,
    format_status,
)
from shared.store.ledger import Ledger
from shared.store.s3 import S3
from shared.store.sites import SiteConfig


@dataclass(frozen=True)
class Destination:
    """The customer's export bucket and how to reach it."""

    s3: S3
    bucket: str
    prefix: str
    server_side_copy: bool  # the fleet's own credentials can read the store and write here

    @classmethod
    def for_site(cls, site: SiteConfig, s3: S3) -> Destination:
        if site.export_bucket is None:
            raise ValueError(f"site {site.site_id} has no export bucket")
        return cls(s3=s3, bucket=site.export_bucket, prefix=site.export_prefix,
                   server_side_copy=site.role_arn is None)

    @property
    def location(self) -> str:
        """What the export ledger belongs to: ``bucket/prefix``."""
        return export_location(self.bucket, self.prefix)

    def key(self, name: str) -> str:
        return export_key(self.prefix, name)

    def publish_index(self, ledger: Ledger) -> None:
        self.s3.put(self.bucket, self.key("index.csv"), format_index(ledger.rows),
                    content_type="text/csv")

    def publish_status(self, ledger: Ledger, total_revisions: int) -> None:
        self.s3.put(self.bucket, self.key("status.csv"), status_body(ledger, total_revisions),
                    content_type="text/csv")

    def index_fingerprint(self, ledger: Ledger) -> str:
        """What ``index.csv`` holds, short: where, and which version of the ledger."""
        return _digest(self.location, ledger.etag or "", str(ledger.position))

    def status_fingerprint(self, ledger: Ledger, total_revisions: int) -> str:
        return _digest(self.location, status_body(ledger, total_revisions).decode())


def status_body(ledger: Ledger, total_revisions: int) -> bytes:
    return format_status(max(total_revisions, ledger.position), len(ledger.rows),
                         ledger.max_exported_t)


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=12).hexdigest()
