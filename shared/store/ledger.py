"""What bucketbridge exported for a site, kept durably in the store bucket.

One object, ``sites/<site>/export/ledger.csv``: its body is the export index (one row per
exported revision) and its metadata the regular cycle's position (every revision up to it has
been exported or passed over as too old).  Each commit replaces it conditionally on the version
read, so two exporters can never both advance it; losing that race raises
``PreconditionFailed``.  The customer's bucket is never read to decide anything.

A ledger belongs to one export location (``bucket/prefix``, in its metadata): what was exported
to one place says nothing of another, so a site whose export moved starts the new location from
revision 1.  A ledger written before locations were recorded belongs to whichever location
commits to it next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from shared.errors import ObjectMissing
from shared.formats.exportfiles import IndexRow, format_index, parse_index
from shared.store.s3 import S3

_POSITION = "bb-position"
_LAST_SUCCESS = "bb-last-success-at"
_LOCATION = "bb-location"


def ledger_key(site: str) -> str:
    return f"sites/{site}/export/ledger.csv"


@dataclass
class Ledger:
    position: int = 0
    rows: list[IndexRow] = field(default_factory=list)
    last_success_at: str | None = None
    etag: str | None = None
    location: str | None = None  # the export location it belongs to (None: not recorded)

    @property
    def max_exported_t(self) -> int | None:
        return max((r.max_t for r in self.rows if r.max_t is not None), default=None)


class ExportLedger:
    def __init__(self, s3: S3, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def load(self, site: str, location: str | None = None) -> Ledger:
        """The ledger of ``location`` (``bucket/prefix``): empty when the site's ledger
        belongs to another one (its version is kept, for the conditional replace)."""
        try:
            found = self.s3.read_object(self.bucket, ledger_key(site))  # body and metadata
        except ObjectMissing:
            return Ledger()
        assert found is not None  # read without a condition
        body, info = found
        stored = info.metadata.get(_LOCATION)
        owner = unquote(stored) if stored else None
        if location is not None and owner is not None and owner != location:
            return Ledger(etag=info.etag, location=location)
        position = int(info.metadata.get(_POSITION, "0"))
        where = f"s3://{self.bucket}/{ledger_key(site)}"
        rows = [r for r in parse_index(body, where) if r.number <= position]
        return Ledger(position=position, rows=rows,
                      last_success_at=info.metadata.get(_LAST_SUCCESS), etag=info.etag,
                      location=owner)

    def commit(self, site: str, ledger: Ledger, position: int, new_rows: list[IndexRow],
               now_iso: str, location: str | None = None) -> Ledger:
        """Advance to ``position`` with ``new_rows`` exported to ``location``; fenced on the
        version loaded."""
        rows = ledger.rows + new_rows
        metadata = {_POSITION: str(position), _LAST_SUCCESS: now_iso}
        location = location or ledger.location
        if location:
            metadata[_LOCATION] = quote(location, safe="")
        etag = self.s3.put(self.bucket, ledger_key(site), format_index(rows), metadata=metadata,
                           if_match=ledger.etag, if_none_match=ledger.etag is None,
                           content_type="text/csv")
        return Ledger(position=position, rows=rows, last_success_at=now_iso, etag=etag,
                      location=location)
