"""The gzip seek point of a site's import, kept in the store bucket beside its revisions.

``sites/<site>/import-seek-point.bin`` holds one point (``shared.formats.gzseek``, about
10 KiB): the newest one the import found in the gzip file it was reading, written after each
revision of such a file.  It only makes a resume faster: a missing, stale (another file or
version) or damaged point means the file is read from its start, so it is written after the
revision, never checked against a race, and a failure to write it does not stop the import.
"""

from __future__ import annotations

import logging

from shared.errors import ObjectMissing, RetryableError
from shared.store.s3 import S3

logger = logging.getLogger(__name__)


def seek_point_key(site: str) -> str:
    return f"sites/{site}/import-seek-point.bin"


class SeekPoints:
    def __init__(self, s3: S3, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def save(self, site: str, data: bytes) -> None:
        try:
            self.s3.put(self.bucket, seek_point_key(site), data,
                        content_type="application/octet-stream")
        except RetryableError as exc:
            logger.warning("site=%s gzip seek point not saved (the next run may read the file "
                           "from its start): %s", site, exc)

    def load(self, site: str) -> bytes | None:
        try:
            return self.s3.read_bytes(self.bucket, seek_point_key(site))
        except (ObjectMissing, RetryableError):
            return None
