"""How far the reimport of one file into one site got: a small hint object in the store bucket.

``sites/<site>/reimports/<sha256>.json``.  It is created (conditionally) before the file's
first revision, so its absence means no revision of the file was ever written; after that it
is rewritten after every revision.  It is a hint, not the truth: the truth is the revisions
themselves, whose metadata name the file (``source_etag``) and the range they cover.  A writer
that died between a revision and the marker's update left revisions above the marker's
``checked_through``, and the next run finds them by looking at those revisions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import orjson

from shared.errors import ObjectMissing, PermanentError
from shared.store.revisions import RevisionMeta
from shared.store.s3 import S3


def marker_key(site: str, file_id: str) -> str:
    return f"sites/{site}/reimports/{file_id.removeprefix('sha256:')}.json"


class MarkerUnreadable(PermanentError):
    """A reimport progress marker exists but cannot be read."""


@dataclass(frozen=True)
class Marker:
    file_id: str  # "sha256:<hex>" of the file's (decompressed) content
    source_key: str  # the file's name, for people
    checked_through: int  # every revision up to this number was looked at (or written by us)
    first_revision: int | None = None
    last_revision: int | None = None  # our newest revision known to the marker
    byte_end: int = 0  # where the next revision starts in the (decompressed) file
    line_end: int = 0
    done: bool = False
    updated_at: str = ""

    def after(self, meta: RevisionMeta, updated_at: str) -> Marker:
        """The marker once revision ``meta`` (of this file) is known to exist."""
        return replace(self, checked_through=max(self.checked_through, meta.number),
                       first_revision=self.first_revision or meta.file_first_revision,
                       last_revision=meta.number, byte_end=meta.byte_end,
                       line_end=meta.line_end, done=meta.ends_file, updated_at=updated_at)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> Marker:
        values = orjson.loads(data)
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
        return cls(**values)


class MarkerStore:
    def __init__(self, s3: S3, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def read(self, site: str, file_id: str) -> Marker | None:
        key = marker_key(site, file_id)
        try:
            data = self.s3.read_bytes(self.bucket, key)
        except ObjectMissing:
            return None
        try:
            return Marker.from_json(data)
        except (ValueError, TypeError) as exc:
            raise MarkerUnreadable(f"reimport marker s3://{self.bucket}/{key} is unreadable: "
                                   f"{exc}") from None

    def create(self, site: str, marker: Marker) -> None:
        """Create the marker; ``PreconditionFailed`` if it exists already."""
        self.s3.put(self.bucket, marker_key(site, marker.file_id), marker.to_json(),
                    if_none_match=True, content_type="application/json")

    def write(self, site: str, marker: Marker) -> None:
        self.s3.put(self.bucket, marker_key(site, marker.file_id), marker.to_json(),
                    content_type="application/json")
