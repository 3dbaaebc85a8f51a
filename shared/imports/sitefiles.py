"""A site's import files in its customer's bucket, and where finished files go."""

from __future__ import annotations

from shared.formats.importkeys import disambiguated
from shared.store.s3 import S3, ObjectInfo
from shared.store.sites import SiteConfig

# A finished file's copy names the version it came from, so a run that dies between copy and
# delete finds its own copy again instead of making a second one.
SOURCE_ETAG_META = "bb-source-etag"


def matching_files(s3: S3, site: SiteConfig) -> list[ObjectInfo]:
    """The site's import files in the customer bucket, in byte order of their keys."""
    pattern = site.pattern
    found = [i for i in s3.list(site.import_bucket, pattern.list_prefix) if pattern.matches(i.key)]
    return sorted(found, key=lambda i: i.key.encode("utf-8"))


def free_destination(s3: S3, bucket: str, dest: str, etag: str) -> str:
    """``dest``, unless a different file already sits there (our own earlier copy of this very
    version, from a run that died before deleting the original, does not count): then a name
    with the version's ETag in it."""
    existing = s3.head(bucket, dest)
    if existing is None or existing.metadata.get(SOURCE_ETAG_META) == etag:
        return dest
    return disambiguated(dest, etag)
