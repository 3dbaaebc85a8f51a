"""The event store: a site's immutable, contiguously numbered revisions in the store bucket.

``sites/<site>/revisions/<n:012d>.json`` holds revision n as NDJSON export lines.  It is created
only with a conditional write, so a second writer (or a zombie past its lease) can never write n
twice: the write is the fence.  Its metadata records what it holds and where its rows came from,
so the import cursor is always recoverable from the newest revision alone.

How the import of a source file ended is recorded one way: the ``file_end`` of the file's last
revision (``open`` while more follows, ``done`` or ``failed``).  When nothing is left to put in
that revision (the file ended just after a commit, or was given up), it is a revision without
events: the commit of "this file is finished".
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from urllib.parse import quote, unquote

from shared.errors import PermanentError, PreconditionFailed
from shared.store.s3 import S3, ObjectInfo, ObjectStream

logger = logging.getLogger(__name__)

_META_PREFIX = "bb-"
CSV_SOURCE = "csv"  # RevisionMeta.source of the recurring CSV import
_INT_FIELDS = frozenset({"number", "events", "rejected", "record_start", "record_end",
                         "byte_start", "byte_end", "line_end", "file_first_revision"})
_OPTIONAL_INT_FIELDS = frozenset({"min_t", "max_t"})
_OPTIONAL_TEXT_FIELDS = frozenset({"end_reason"})
# S3 keeps at most 2 KB of user metadata per object: a reason is cut well below that.
MAX_END_REASON_CHARS = 300


class FileEnd(StrEnum):
    """How far a revision takes the import of its source file."""

    OPEN = "open"  # more of the file follows
    DONE = "done"  # the file ended: every record after this revision's range was read
    FAILED = "failed"  # the file was given up here (``end_reason`` says why)


class RevisionExists(PreconditionFailed):
    """Revision n was already written: this writer lost a race and must stop."""


class RevisionUnreadable(PermanentError):
    """A revision object exists but its metadata cannot be read."""


def revisions_prefix(site: str) -> str:
    return f"sites/{site}/revisions/"


def revision_key(site: str, number: int) -> str:
    return f"{revisions_prefix(site)}{number:012d}.json"


def revision_number(key: str) -> int | None:
    name = key.rpartition("/")[2]
    stem = name.removesuffix(".json")
    if stem == name or len(stem) != 12 or not stem.isdigit():
        return None
    return int(stem)


@dataclass(frozen=True)
class RevisionMeta:
    """What a revision holds and where its rows came from."""

    number: int
    events: int
    min_t: int | None
    max_t: int | None
    written_at: str  # ISO 8601 UTC
    source: str  # "csv" for the recurring import, "reimport" for lines sent back by a user
    source_key: str
    source_etag: str
    record_start: int  # first data record of the source covered (1-based)
    record_end: int  # last data record covered
    byte_start: int
    byte_end: int  # offset just past the last covered record
    line_end: int
    rejected: int
    file_end: FileEnd
    file_first_revision: int
    end_reason: str = ""  # why the file failed, when ``file_end`` is FAILED

    @property
    def ends_file(self) -> bool:
        return self.file_end is not FileEnd.OPEN

    def to_metadata(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in asdict(self).items():
            if value is None or (value == "" and name in _OPTIONAL_TEXT_FIELDS):
                continue
            text = str(value)[:MAX_END_REASON_CHARS] if name == "end_reason" else str(value)
            out[_META_PREFIX + name.replace("_", "-")] = quote(text, safe="")
        return out

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> RevisionMeta:
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = metadata.get(_META_PREFIX + f.name.replace("_", "-"))
            text = unquote(raw) if raw is not None else None
            if f.name in _OPTIONAL_INT_FIELDS:
                values[f.name] = int(text) if text else None
            elif f.name in _OPTIONAL_TEXT_FIELDS:
                values[f.name] = text or ""
            elif text is None:
                raise ValueError(f"revision metadata lacks {f.name}")
            elif f.name in _INT_FIELDS:
                values[f.name] = int(text)
            elif f.name == "file_end":
                values[f.name] = FileEnd(text)
            else:
                values[f.name] = text
        return cls(**values)  # type: ignore[arg-type]


class EventStore:
    """Reads and writes revisions in the store bucket."""

    def __init__(self, s3: S3, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def write(self, site: str, meta: RevisionMeta, body: bytes | bytearray) -> None:
        """Create revision ``meta.number``; ``RevisionExists`` if it is already there."""
        try:
            self.s3.put(self.bucket, revision_key(site, meta.number), body,
                        metadata=meta.to_metadata(), if_none_match=True,
                        content_type="application/x-ndjson")
        except PreconditionFailed:
            raise RevisionExists(f"revision {meta.number} of site {site} exists already") from None

    def head(self, site: str, number: int) -> tuple[RevisionMeta, ObjectInfo] | None:
        info = self.s3.head(self.bucket, revision_key(site, number))
        if info is None:
            return None
        try:
            return RevisionMeta.from_metadata(info.metadata), info
        except ValueError as exc:
            raise RevisionUnreadable(f"revision {number} of site {site} is unreadable "
                                     f"({self.location(site, number)}): {exc}") from None

    def info(self, site: str, number: int) -> ObjectInfo | None:
        """Revision ``number``'s object (size, ETag), without reading its metadata."""
        return self.s3.head(self.bucket, revision_key(site, number))

    def objects(self, site: str, after: int = 0) -> Iterator[ObjectInfo]:
        """Revision objects numbered above ``after``, in order (from a listing: no metadata)."""
        start = revision_key(site, after) if after else ""
        for info in self.s3.list(self.bucket, revisions_prefix(site), start_after=start):
            if revision_number(info.key) is not None:
                yield info

    def location(self, site: str, number: int) -> str:
        """Where revision ``number`` is, for messages: ``s3://bucket/key``."""
        return f"s3://{self.bucket}/{revision_key(site, number)}"

    def latest_number(self, site: str, hint: int = 0) -> int:
        """The highest revision number (0 when there is none).

        ``hint`` is a number known to exist (a cache); listing starts after it, so a long
        history costs one request.  A wrong hint is detected and ignored.
        """
        if hint and self.s3.head(self.bucket, revision_key(site, hint)) is None:
            logger.warning("site=%s revision hint %d does not exist; listing all", site, hint)
            hint = 0
        latest = hint
        for info in self.objects(site, after=hint):
            latest = revision_number(info.key) or latest
        return latest

    def open(self, site: str, number: int) -> ObjectStream:
        return self.s3.open(self.bucket, revision_key(site, number))
