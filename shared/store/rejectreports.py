"""The bad rows met in each revision's source range, kept in the store bucket beside it.

``sites/<site>/rejects/<n>-<end>.csv`` is keyed by the revision n AND the last record of its
range, and written just before the revision.  A writer that then loses the revision's
conditional write (a zombie, or a run that died and was redone with another batch cut) leaves a
report under another key, which is never read: only the one matching the committed revision
counts.  When a file is finished, the reports of its revisions become its ``.errors.csv``.
"""

from __future__ import annotations

from collections.abc import Iterator

from shared.errors import ObjectMissing
from shared.store.revisions import EventStore
from shared.store.s3 import S3


def rejects_prefix(site: str) -> str:
    return f"sites/{site}/rejects/"


def rejects_key(site: str, number: int, record_end: int) -> str:
    return f"{rejects_prefix(site)}{number:012d}-{record_end}.csv"


class RejectReports:
    def __init__(self, s3: S3, bucket: str, revisions: EventStore) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.revisions = revisions

    def write(self, site: str, number: int, record_end: int, body: bytes) -> None:
        """Keep the report of revision ``number`` (whose range ends at ``record_end``);
        written before the revision, so a committed revision always finds its report."""
        self.s3.put(self.bucket, rejects_key(site, number, record_end), body,
                    content_type="text/csv")

    def read(self, site: str, first: int, last: int) -> Iterator[bytes]:
        """The reports of the committed revisions ``first..last``, in order."""
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
                head = self.revisions.head(site, number)
                ends[number] = head[0].record_end if head else None
            if ends[number] != int(end_text):
                continue  # left by a writer whose revision lost
            try:
                yield self.s3.read_bytes(self.bucket, info.key)
            except ObjectMissing:
                continue
