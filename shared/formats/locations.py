"""Where a site reads and writes in customers' buckets, and when two such places meet.  Pure.

Tenants are isolated by locations (DESIGN.md, invariant 7): a site's **import location** (a
bucket and the keys its pattern matches) and its **export location** (a bucket and a key
prefix) belong to that site alone.  The rules:

- two import locations *overlap* when one key could match both patterns: the same bucket and
  folder, one stem a prefix of the other (``acc`` and ``accounts``: ``accounts-2.csv`` matches
  both), and an extension in common (compared without case, so a later case-insensitive match
  cannot open a gap);
- two export locations overlap when they share a bucket and one prefix is a prefix of the other
  (both empty included): one site's ``index.csv`` or ``revisions/1.json`` would sit in, or be
  replaced in, the other's place;
- an import location and an export location clash when the import's pattern matches a file the
  export writes (``index.csv``, ``status.csv``), which the import would then take and move;
- the store bucket is nobody's import or export bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import IsolationError, UserError
from shared.formats.exportfiles import normalise_prefix
from shared.formats.importkeys import COMPLETED_PREFIX, FAILED_PREFIX, FilePattern
from shared.formats.printable import has_unsafe, printable

# S3 keys are at most 1,024 bytes; an export key adds ``revisions/<n>.json`` (< 40 bytes).
MAX_EXPORT_PREFIX_BYTES = 512
# The files an export writes at the top of its prefix (revisions/ holds only .json files).
EXPORT_TOP_FILES = ("index.csv", "status.csv")


@dataclass(frozen=True)
class ImportLocation:
    bucket: str
    folder: str
    stem: str
    extensions: tuple[str, ...]  # as the pattern has them

    @classmethod
    def of(cls, bucket: str, pattern: FilePattern) -> ImportLocation:
        return cls(bucket, pattern.folder, pattern.stem, pattern.extensions)

    @property
    def pattern(self) -> FilePattern:
        return FilePattern(self.folder, self.stem, self.extensions)

    def overlaps(self, other: ImportLocation) -> bool:
        if self.bucket != other.bucket or self.folder != other.folder:
            return False
        if not (self.stem.startswith(other.stem) or other.stem.startswith(self.stem)):
            return False
        return bool({e.lower() for e in self.extensions} & {e.lower() for e in other.extensions})

    def clashes_with(self, export: ExportLocation) -> bool:
        """Whether this pattern matches a file ``export`` writes."""
        return self.bucket == export.bucket and any(
            self.pattern.matches(export.prefix + name) for name in EXPORT_TOP_FILES)

    def __str__(self) -> str:
        names = " or ".join(f"{self.folder}{self.stem}*{e}" for e in self.extensions)
        return printable(f"s3://{self.bucket}/{names}")


@dataclass(frozen=True)
class ExportLocation:
    bucket: str
    prefix: str  # normalised: empty, or ending in "/"

    def overlaps(self, other: ExportLocation) -> bool:
        return self.bucket == other.bucket and (
            self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix))

    def __str__(self) -> str:
        return printable(f"s3://{self.bucket}/{self.prefix}")


def validate_export_prefix(prefix: str) -> str:
    """The prefix, normalised (no leading ``/``, a trailing ``/`` unless empty); ``UserError``
    unless it is a safe key prefix: no control characters, no ``.``/``..`` or empty segment,
    at most ``MAX_EXPORT_PREFIX_BYTES`` bytes, outside the import's own folders."""
    shown = printable(prefix)
    if has_unsafe(prefix):
        raise UserError(f"export prefix '{shown}' holds control characters")
    if prefix.startswith("/"):
        raise UserError(f"export prefix '{shown}' may not start with /")
    normal = normalise_prefix(prefix)
    if normal != prefix and normal != prefix + "/":
        raise UserError(f"export prefix '{shown}' has spaces around it")
    segments = normal.split("/")[:-1]
    if any(s in ("", ".", "..") for s in segments):
        raise UserError(f"export prefix '{shown}' has an empty, '.' or '..' segment")
    if len(normal.encode("utf-8")) > MAX_EXPORT_PREFIX_BYTES:
        raise UserError(f"export prefix is longer than {MAX_EXPORT_PREFIX_BYTES} bytes")
    if normal.startswith((COMPLETED_PREFIX, FAILED_PREFIX)):
        raise UserError(f"export prefix '{shown}' is inside a folder where imported files go")
    return normal


def refuse_store_bucket(bucket: str, store_bucket: str, what: str) -> None:
    """``UserError`` when ``bucket`` (a site's ``what``) is the store bucket."""
    if bucket == store_bucket:
        raise IsolationError(f"the {what} {bucket} is bucketbridge's store bucket: no site may "
                        "import from it or export to it")
