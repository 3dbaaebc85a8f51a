"""What the next import file would produce: the first rows mapped to export lines."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO, Any

from shared.clock import Clock
from shared.formats.csvrecords import RecordReader, read_header
from shared.formats.csvrows import Columns, RowRejected, parse_header, row_kind, row_to_line
from shared.formats.importkeys import is_gzip_key
from shared.formats.streams import RawSource, open_stream
from shared.store.s3 import S3, ObjectInfo

PREVIEW_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class PreviewRow:
    record: int
    kind: str  # "event", "alias", "properties" or "rejected"
    line: dict[str, Any] | None
    reason: str | None = None


@dataclass(frozen=True)
class Preview:
    key: str
    columns: Columns
    rows: list[PreviewRow]


def preview_file(s3: S3, bucket: str, info: ObjectInfo, clock: Clock,
                 max_rows: int = 10) -> Preview:
    """Read the header and the first ``max_rows`` records; ``BadFile`` if unusable.

    An alias row without a Timestamp shows the time of the preview as its ``_t``.

    Reads ``PREVIEW_BYTES`` of the file at most, decompressed (a gzip of endless blank lines
    or of one endless line shows what those bytes hold, and returns at once); a record cut by
    that end is left out.
    """
    gzipped = is_gzip_key(info.key)
    stream = s3.open(bucket, info.key, if_match=info.etag,
                     end_byte=None if gzipped else PREVIEW_BYTES - 1)
    now_s = int(clock.now_s())
    with open_stream(stream, gzipped=gzipped) as opened:
        reader = RecordReader(io.BufferedReader(RawSource(_Prefix(opened.file, PREVIEW_BYTES))))
        columns = parse_header(read_header(reader).cells or [])
        rows: list[PreviewRow] = []
        for record in reader:
            if len(rows) >= max_rows or record.end_byte >= PREVIEW_BYTES:
                break
            if record.cells is None:
                rows.append(PreviewRow(record.number, "rejected", None, record.error))
                continue
            try:
                line = row_to_line(record.cells, columns, import_time_s=now_s)
            except RowRejected as rej:
                rows.append(PreviewRow(record.number, "rejected", None, rej.reason))
                continue
            rows.append(PreviewRow(record.number, row_kind(line), line))
    return Preview(key=info.key, columns=columns, rows=rows)


class _Prefix:
    """The first ``size_bytes`` of a file, then its end."""

    def __init__(self, file: IO[bytes], size_bytes: int) -> None:
        self._file = file
        self._left = size_bytes

    def read(self, size_bytes: int = -1, /) -> bytes:
        wanted = self._left if size_bytes < 0 else min(size_bytes, self._left)
        data = self._file.read(wanted) if wanted else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        return None  # the file beneath is closed with its stream
