"""What the next import file would produce: the first rows mapped to export lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.clock import Clock
from shared.formats.csvrecords import RecordReader, read_header
from shared.formats.csvrows import Columns, RowRejected, parse_header, row_kind, row_to_line
from shared.formats.importkeys import is_gzip_key
from shared.formats.streams import open_stream
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

    Reads at most the first few MiB (the whole stream for gzip, stopped early).
    """
    gzipped = is_gzip_key(info.key)
    stream = s3.open(bucket, info.key, if_match=info.etag,
                     end_byte=None if gzipped else PREVIEW_BYTES - 1)
    now_s = int(clock.now_s())
    with open_stream(stream, gzipped=gzipped) as opened:
        reader = RecordReader(opened.file)
        columns = parse_header(read_header(reader).cells or [])
        rows: list[PreviewRow] = []
        for record in reader:
            if len(rows) >= max_rows:
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
