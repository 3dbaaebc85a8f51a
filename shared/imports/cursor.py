"""Where a site's CSV import stands: the one cursor that the scan, ``status`` and ``preview``
read.

The cursor is the newest revision the recurring CSV import wrote.  Revisions from other
sources (a reimport of export files) may sit above it; what was learnt about them is kept as a
hint in Redis, and since revisions never change each one is looked at once, even after a
reimport of thousands.  ``recover`` then says, from the cursor and the files in the customer's
bucket, what the last run left: a file to go on with, one that changed or vanished before its
end, or one that is finished but still there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from shared.fleet.hints import RevisionTailCache
from shared.store.revisions import EventStore, FileEnd, RevisionMeta
from shared.store.s3 import ObjectInfo

CSV_SOURCE = "csv"  # RevisionMeta.source of the recurring CSV import


@dataclass(frozen=True)
class Cursor:
    latest: int  # the site's highest revision number (0: none)
    meta: RevisionMeta | None  # the newest CSV revision
    info: ObjectInfo | None  # its object (for when it was written)


class Revisions:
    """Finding revisions by what they say, newest first, with the Redis hints' help."""

    def __init__(self, store: EventStore, hints: RevisionTailCache) -> None:
        self.store = store
        self.hints = hints

    def latest(self, site: str) -> int:
        """The highest revision number (0 when there is none)."""
        number = self.store.latest_number(site, hint=self.hints.get(site))
        if number:
            self.hints.put(site, number)
        return number

    def newest(self, site: str, top: int, floor: int,
               matches: Callable[[RevisionMeta], bool]) -> tuple[RevisionMeta, ObjectInfo] | None:
        """The newest revision numbered ``floor+1..top`` that ``matches``."""
        for candidate in range(top, floor, -1):
            head = self.store.head(site, candidate)
            if head is not None and matches(head[0]):
                return head
        return None

    def cursor(self, site: str) -> Cursor:
        """The site's CSV import cursor."""
        number = self.latest(site)
        known = self.hints.get_cursor(site)
        floor = known[1] if known and known[1] <= number else 0
        head = self.newest(site, number, floor, _is_csv)
        if head is None and known and floor and known[0]:
            head = self.store.head(site, known[0])
            if head is None or not _is_csv(head[0]):
                head = self.newest(site, floor, 0, _is_csv)  # the hint does not hold
        if number:
            self.hints.put_cursor(site, head[0].number if head else 0, number)
        return Cursor(number, *head) if head else Cursor(number, None, None)


def _is_csv(meta: RevisionMeta) -> bool:
    return meta.source == CSV_SOURCE


class Recovery(StrEnum):
    """What the last run left, as ``recover`` finds it."""

    NOTHING = "nothing"  # no cursor, or its file is finished and gone (or a new one)
    RESUME = "resume"  # the cursor's file is there, unchanged: go on after the cursor
    CHANGED = "changed"  # the cursor's file was replaced before its end
    VANISHED = "vanished"  # the cursor's file was deleted before its end
    UNMOVED = "unmoved"  # the cursor's file is finished (done or failed) but not moved yet


@dataclass(frozen=True)
class Found:
    recovery: Recovery
    file: ObjectInfo | None = None  # the cursor's file, when it is in the bucket


def recover(cursor: Cursor, files: list[ObjectInfo]) -> Found:
    """What to do first, from the cursor and the site's files in the customer's bucket."""
    meta = cursor.meta
    if meta is None:
        return Found(Recovery.NOTHING)
    current = next((f for f in files if f.key == meta.source_key), None)
    if meta.file_end is FileEnd.OPEN:
        if current is None:
            return Found(Recovery.VANISHED)
        if current.etag != meta.source_etag:
            return Found(Recovery.CHANGED, current)
        return Found(Recovery.RESUME, current)
    written = cursor.info.last_modified if cursor.info else None
    if current is not None and current.etag == meta.source_etag and (
            current.last_modified is None or written is None
            or current.last_modified <= written):
        return Found(Recovery.UNMOVED, current)
    return Found(Recovery.NOTHING)


@dataclass(frozen=True)
class Progress:
    """The file being imported and the next record of it."""

    key: str
    next_record: int
    next_byte: int
    size_bytes: int


def progress(cursor: Cursor, files: list[ObjectInfo]) -> Progress | None:
    """The current file and its next record: the cursor's file while it goes on, else the
    first file waiting (from its first record); ``None`` when nothing waits."""
    found = recover(cursor, files)
    if found.recovery is Recovery.RESUME and cursor.meta and found.file:
        return Progress(found.file.key, cursor.meta.record_end + 1, cursor.meta.byte_end,
                        found.file.size_bytes)
    waiting = [f for f in files if found.file is None or f.key != found.file.key]
    if not waiting:
        return None
    return Progress(waiting[0].key, 1, 0, waiting[0].size_bytes)
