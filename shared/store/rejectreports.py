"""What the store keeps about import files beside their revisions.

- The bad rows met in the source range of a revision: ``sites/<site>/rejects/<n>-<end>.csv``,
  keyed by the revision AND the last record of its range, written just before the revision.  A
  writer that then loses the revision's conditional write (a zombie, or a run that died and was
  redone with another batch cut) leaves a file under another key, which is never read: only the
  one matching the committed revision counts.
- How a file's import ended when no revision says so: ``sites/<site>/file-ends/<n>.json`` for
  the file whose last revision is n — ``done`` (its records after revision n were all bad, or
  there were none) or ``closed`` (it failed, or vanished, before its end).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import orjson

from shared.errors import ObjectMissing
from shared.store.revisions import EventStore

DONE = "done"
CLOSED = "closed"


def rejects_prefix(site: str) -> str:
    return f"sites/{site}/rejects/"


def rejects_key(site: str, number: int, record_end: int) -> str:
    return f"{rejects_prefix(site)}{number:012d}-{record_end}.csv"


def file_end_key(site: str, number: int) -> str:
    return f"sites/{site}/file-ends/{number:012d}.json"


@dataclass(frozen=True)
class FileEnd:
    how: str  # DONE or CLOSED
    at: str  # ISO 8601 UTC
    reason: str = ""


class FileRecords:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.s3 = store.s3
        self.bucket = store.bucket

    def write_rejects(self, site: str, number: int, record_end: int, body: bytes) -> None:
        self.s3.put(self.bucket, rejects_key(site, number, record_end), body,
                    content_type="text/csv")

    def read_rejects(self, site: str, first: int, last: int) -> Iterator[bytes]:
        """The bad-row reports of the committed revisions ``first..last``, in order."""
        start = f"{rejects_prefix(site)}{first - 1:012d}~" if first > 1 else ""
        ends: dict[int, int | None] = {}
        for info in self.s3.list(self.bucket, rejects_prefix(site), start_after=start):
            number_text, _, end_text = info.key.rpartition("/")[2].removesuffix(".csv") \
                .partition("-")
            if not (number_text.isdigit() and end_text.isdigit()):
                continue
            number = int(number_text)
            if number > last:
                break
            if number not in ends:
                head = self.store.head(site, number)
                ends[number] = head[0].record_end if head else None
            if ends[number] != int(end_text):
                continue  # left by a writer whose revision lost
            try:
                yield self.s3.read_bytes(self.bucket, info.key)
            except ObjectMissing:
                continue

    def mark_end(self, site: str, number: int, end: FileEnd) -> None:
        self.s3.put(self.bucket, file_end_key(site, number), orjson.dumps(asdict(end)),
                    content_type="application/json")

    def end_of(self, site: str, number: int) -> FileEnd | None:
        try:
            raw = orjson.loads(self.s3.read_bytes(self.bucket, file_end_key(site, number)))
        except ObjectMissing:
            return None
        return FileEnd(how=str(raw["how"]), at=str(raw["at"]), reason=str(raw.get("reason", "")))
