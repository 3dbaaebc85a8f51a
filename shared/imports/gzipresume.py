"""Resuming a gzip file near its cursor instead of inflating it from its first byte.

A run over a ``.csv.gz`` follows the file's stored bytes with a ``PointFinder`` and, after each
revision it commits, saves the newest seek point at or before the revision's end
(``SeekPoints``: one small object per site).  The next run, if that point belongs to the same
file version and lies at or before its cursor, reads the stored bytes from the point on and
inflates only the rest of the last revision's block; if the point is missing, stale, damaged, or
the file does not inflate from it, the run reads from the start as before.  Either way the
bytes the reader sees are the same, so records, positions and revisions are too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from typing import IO

from shared.errors import BadFile
from shared.formats.csvrecords import skip_to
from shared.formats.gzseek import PointFinder, SeekPoint, decode, encode
from shared.formats.streams import ByteSource, open_stream
from shared.store.seekpoints import SeekPoints

logger = logging.getLogger(__name__)


class GzipResume:
    """The seek points of one run over one gzip file (``key`` at ``etag``)."""

    def __init__(self, points: SeekPoints, site: str, key: str, etag: str) -> None:
        self.points = points
        self.site = site
        self.key = key
        self.etag = etag
        self.finder = PointFinder(key, etag)

    def saved(self, byte_start: int) -> SeekPoint | None:
        data = self.points.load(self.site)
        return None if data is None else decode(data, self.key, self.etag, byte_start)

    def resume(self, point: SeekPoint, byte_start: int, open_at: Callable[[int], ByteSource],
               streams: ExitStack) -> IO[bytes] | None:
        """The file's bytes from ``byte_start``, inflated from ``point`` on; ``None`` if the
        file does not inflate from there (the caller reads it from the start)."""
        with ExitStack() as attempt:
            finder = PointFinder(self.key, self.etag, start=point)
            opened = attempt.enter_context(open_stream(
                open_at(point.in_bytes), gzipped=True, resume_from=point,
                stored_tap=finder.feed))
            try:
                skip_to(opened.file, byte_start - point.out_bytes)
            except BadFile as exc:
                logger.warning("site=%s file=%s the saved gzip seek point did not hold (%s): "
                               "reading from the start", self.site, self.key, exc.reason)
                return None
            streams.push(attempt.pop_all())
            self.finder = finder
            return opened.file

    def checkpoint(self, byte_end: int) -> None:
        """Save the newest point at or before ``byte_end`` (just committed)."""
        point = self.finder.point_at(byte_end)
        if point is not None:
            self.points.save(self.site, encode(point))
