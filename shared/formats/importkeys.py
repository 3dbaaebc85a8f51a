"""Which keys of a customer's bucket belong to a site's import, and where finished files go.

Pure functions: no I/O.  A site names a base filename such as ``accounts.csv`` (optionally inside
a folder, ``incoming/accounts.csv``); the files that match are ``<folder><stem>*<ext>`` directly
in that folder, where ``<ext>`` is ``.csv`` or ``.csv.gz`` for a ``.csv`` base name.  The
extension is matched without regard to case (``accounts-1.CSV``, ``accounts-2.csv.GZ``), as
people and tools write it either way; the folder and stem are matched exactly, as S3 lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import UserError
from shared.formats.printable import has_unsafe
from shared.formats.times import utc_datetime

COMPLETED_PREFIX = "completed_imports/"
FAILED_PREFIX = "failed_imports/"
_CSV = ".csv"
_CSV_GZ = ".csv.gz"


@dataclass(frozen=True)
class FilePattern:
    folder: str
    stem: str
    extensions: tuple[str, ...]

    @classmethod
    def from_base_filename(cls, base_filename: str) -> FilePattern:
        """``accounts.csv`` → files ``accounts*.csv`` and ``accounts*.csv.gz``."""
        name = base_filename.strip()
        if has_unsafe(base_filename):
            raise UserError(f"base filename {base_filename!r} holds control characters")
        if not name or name.endswith("/") or name.startswith("/"):
            raise UserError(f"base filename {base_filename!r} must name a file, like accounts.csv")
        folder, _, filename = name.rpartition("/")
        folder = f"{folder}/" if folder else ""
        if folder.startswith((COMPLETED_PREFIX, FAILED_PREFIX)):
            raise UserError(f"base filename {base_filename!r} is inside a folder bucketbridge "
                             "writes to")
        lowered = filename.lower()
        extensions: tuple[str, ...]
        if lowered.endswith(_CSV_GZ):
            stem, extensions = filename[: -len(_CSV_GZ)], (filename[-len(_CSV_GZ):],)
        elif lowered.endswith(_CSV):
            ext = filename[-len(_CSV):]
            stem, extensions = filename[: -len(_CSV)], (ext, ext + ".gz")
        else:
            raise UserError(f"base filename {base_filename!r} must end in .csv or .csv.gz")
        if not stem:
            raise UserError(f"base filename {base_filename!r} has no name before its extension")
        return cls(folder=folder, stem=stem, extensions=extensions)

    @property
    def list_prefix(self) -> str:
        """The narrowest S3 prefix that lists every candidate key."""
        return self.folder + self.stem

    def matches(self, key: str) -> bool:
        if not key.startswith(self.list_prefix):
            return False
        rest = key[len(self.folder):]
        if "/" in rest:
            return False
        lowered = rest.lower()
        return any(lowered.endswith(ext.lower()) and len(rest) >= len(self.stem) + len(ext)
                   for ext in self.extensions)


def is_gzip_key(key: str) -> bool:
    return key.lower().endswith(".gz")


def basename(key: str) -> str:
    return key.rpartition("/")[2]


def _dated(prefix: str, key: str, when_s: float) -> str:
    day = utc_datetime(when_s)
    return f"{prefix}{day:%Y/%m/%d}/{basename(key)}"


def completed_key(key: str, completed_at_s: float) -> str:
    """``completed_imports/YYYY/MM/DD/<name>`` for the UTC day the file's import finished."""
    return _dated(COMPLETED_PREFIX, key, completed_at_s)


def failed_key(key: str, failed_at_s: float) -> str:
    """``failed_imports/YYYY/MM/DD/<name>``: where a file that cannot be imported is moved."""
    return _dated(FAILED_PREFIX, key, failed_at_s)


def row_report_key(destination_key: str) -> str:
    """The bad-row report beside a completed file: ``<name>.errors.csv``."""
    return destination_key + ".errors.csv"


def failure_report_key(destination_key: str) -> str:
    """The readable report beside a failed file: ``<name>.error.txt``."""
    return destination_key + ".error.txt"


def disambiguated(destination_key: str, etag: str, attempt: int = 1) -> str:
    """Another name for a destination already taken by a different file (an earlier upload of
    the same name finished the same day): the source's ETag goes before the extension,
    ``accounts.csv`` → ``accounts.1a2b3c4d.csv``; from the second ``attempt`` on (the same
    content uploaded again) a number follows it, ``accounts.1a2b3c4d-2.csv``."""
    folder, _, name = destination_key.rpartition("/")
    tag = etag.strip('"').split("-")[0][:8] or "0"
    if attempt > 1:
        tag = f"{tag}-{attempt}"
    lowered = name.lower()
    for ext in (".csv.gz", ".csv", ".gz"):
        if lowered.endswith(ext):
            return f"{folder}/{name[: -len(ext)]}.{tag}{name[-len(ext):]}"
    return f"{folder}/{name}.{tag}"
