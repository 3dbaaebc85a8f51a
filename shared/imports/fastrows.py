"""The import's fast path: plain CSV records converted in C, the rest left to the Python path.

``shared.formats._fastcsv`` converts, straight from the stream's buffer, the records it can
vouch for: single-line, well-formed, valid UTF-8, cells Python would not strip, whole-second
timestamps in range, no alias, not rejected.  It appends exactly the bytes the Python path
(``row_to_line`` then ``orjson.dumps``) would, and stops before anything else, before the row
that would fill the batch, and before the deadline check is due, so the Python path reads that
next record as it always has: revisions, bad-row reports and positions are the same whichever
engine runs (``tests/shared/imports/test_fastrows.py`` checks it on the bad-input corpus and on
generated files).

``BUCKETBRIDGE_CSV_ENGINE``: ``auto`` (the default: fast when the extension is installed),
``fast`` (refuse to start without it) or ``python``.
"""

from __future__ import annotations

from types import ModuleType

import orjson

from shared.errors import SettingsError
from shared.formats.csvrecords import RecordReader
from shared.formats.csvrows import Columns
from shared.store.revisionwriter import Batch, Limits

_fastcsv: ModuleType | None
try:
    from shared.formats import _fastcsv
except ImportError:  # built without a compiler: the Python path does everything
    _fastcsv = None

_MAX_COLUMNS = 512
# After a call that converted fewer than this many records (a file of unusual rows), the
# Python path reads the next _BACK_OFF_RECORDS on its own: peeking costs a copy of the buffer.
_FEW_RECORDS = 32
_BACK_OFF_RECORDS = 256


def fast_available() -> bool:
    return _fastcsv is not None


def use_fast(engine: str) -> bool:
    """Whether the import should convert with the fast path, for a ``BUCKETBRIDGE_CSV_ENGINE``
    value; ``SettingsError`` for ``fast`` without the extension."""
    if engine == "python":
        return False
    if engine == "fast" and _fastcsv is None:
        raise SettingsError("BUCKETBRIDGE_CSV_ENGINE=fast but the compiled CSV engine is not "
                            "installed (use auto or python)")
    return _fastcsv is not None


class FastRows:
    """The fast path for one file's columns; ``for_columns`` says whether there is one."""

    def __init__(self, columns: Columns) -> None:
        props = tuple((index, b"," + orjson.dumps(name) + b":") for index, name in columns.props)
        self._spec = (columns.width, columns.identity, columns.timestamp, _or_absent(columns.event),
                      _or_absent(columns.alias), props)
        self._python_left = 0

    @classmethod
    def for_columns(cls, columns: Columns) -> FastRows | None:
        """``None`` when the file's rows are all for the Python path: no Timestamp column (an
        alias file), or more columns than the fast path holds.  (Two properties of one name
        never get here: ``parse_header`` refuses such a header.)"""
        if _fastcsv is None or columns.timestamp is None or columns.width > _MAX_COLUMNS:
            return None
        return cls(columns)

    def take(self, reader: RecordReader, batch: Batch, limits: Limits, max_records: int) -> int:
        """Convert up to ``max_records`` records from ``reader`` into ``batch``, stopping before
        one it cannot vouch for or that would fill the batch; how many it converted."""
        if self._python_left:
            self._python_left -= 1
            return 0
        if max_records <= 0 or _fastcsv is None:
            return 0
        data = reader.buffered()
        if not data:
            return 0
        end, records, min_t, max_t = _fastcsv.convert(
            data, 0, self._spec, batch.body, max_records, batch.events,
            limits.max_events_per_revision, limits.max_revision_bytes)
        if records < _FEW_RECORDS and records < max_records:
            self._python_left = _BACK_OFF_RECORDS
        if records:
            reader.took(end, records)
            batch.events += records
            if batch.min_t is None or min_t < batch.min_t:
                batch.min_t = min_t
            if batch.max_t is None or max_t > batch.max_t:
                batch.max_t = max_t
        return int(records)


def _or_absent(index: int | None) -> int:
    return -1 if index is None else index
