"""A site's import files in its customer's bucket, and where finished files go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.errors import PermanentError
from shared.formats.importkeys import disambiguated
from shared.store.s3 import S3, ObjectInfo
from shared.store.sites import SiteConfig

# A finished file's copy and its report name the upload they came from (its ETag and when it
# was uploaded), so a run that dies between two steps finds its own copy and report again
# instead of making second ones, and a later upload of the same name never replaces them.
SOURCE_ETAG_META = "bb-source-etag"
SOURCE_MODIFIED_META = "bb-source-modified"
_MAX_NAMES = 1000


def matching_files(s3: S3, site: SiteConfig) -> list[ObjectInfo]:
    """The site's import files in the customer bucket, in byte order of their keys."""
    pattern = site.pattern
    found = [i for i in s3.list(site.import_bucket, pattern.list_prefix) if pattern.matches(i.key)]
    return sorted(found, key=lambda i: i.key.encode("utf-8"))


@dataclass(frozen=True)
class Upload:
    """One upload of a file: its ETag, and when it was uploaded (whole seconds; empty when
    unknown).  The same content uploaded twice has one ETag and two times."""

    etag: str
    modified: str = ""

    @classmethod
    def of(cls, info: ObjectInfo) -> Upload:
        modified = str(int(info.last_modified.timestamp())) if info.last_modified else ""
        return cls(info.etag, modified)

    @property
    def metadata(self) -> dict[str, str]:
        meta = {SOURCE_ETAG_META: self.etag}
        if self.modified:
            meta[SOURCE_MODIFIED_META] = self.modified
        return meta

    def made(self, found: ObjectInfo | None) -> bool:
        """Whether ``found`` (a copy or report) is absent or was made for this upload."""
        if found is None:
            return True
        theirs = found.metadata.get(SOURCE_MODIFIED_META, "")
        return found.metadata.get(SOURCE_ETAG_META) == self.etag and (
            not theirs or not self.modified or theirs == self.modified)


@dataclass(frozen=True)
class Destination:
    key: str
    has_report: bool  # a report of this upload is already there (a run died after writing it)


def free_destination(s3: S3, bucket: str, dest: str, upload: Upload,
                     report_key: Callable[[str], str]) -> Destination:
    """``dest``, unless a copy or report of another upload sits there (our own, from a run that
    died half-way, does not count): then a name with the upload's ETag in it, numbered if the
    same content failed or finished there before."""
    for attempt in range(_MAX_NAMES + 1):
        candidate = dest if attempt == 0 else disambiguated(dest, upload.etag, attempt)
        if not upload.made(s3.head(bucket, candidate)):
            continue
        report = s3.head(bucket, report_key(candidate))
        if upload.made(report):
            return Destination(candidate, report is not None)
    raise PermanentError(f"no free name for s3://{bucket}/{dest} after {_MAX_NAMES} tries")


def reported_destination(s3: S3, bucket: str, dest: str, upload: Upload,
                         report_key: Callable[[str], str]) -> str | None:
    """The name under ``dest``'s folder where a report of ``upload`` was already written (by a
    run that died before it moved the file), or ``None``."""
    for attempt in range(_MAX_NAMES + 1):
        candidate = dest if attempt == 0 else disambiguated(dest, upload.etag, attempt)
        report = s3.head(bucket, report_key(candidate))
        if report is None:
            return None
        if upload.made(report) and upload.made(s3.head(bucket, candidate)):
            return candidate
    return None
