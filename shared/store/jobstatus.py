"""A site's last known import outcome, kept in the store bucket for ``bucketbridge status``.

It is a report, not state that drives work: the cursor lives in the revisions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson

from shared.errors import ObjectMissing
from shared.formats.times import parse_iso_utc
from shared.store.s3 import S3


def status_key(site: str, job: str) -> str:
    return f"sites/{site}/status/{job}.json"


@dataclass(frozen=True)
class JobStatus:
    job: str
    finished_at: str | None = None
    outcome: str | None = None  # a job outcome (done, budget, blocked, error, …) or "retrying"
    last_error: str | None = None
    last_error_at: str | None = None
    last_success_at: str | None = None  # the last run that ended without an error
    details: dict[str, Any] | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    @property
    def error_resolved(self) -> bool:
        """Whether the last error is older than the last success (it was resolved since)."""
        if not self.last_error or not self.last_error_at or not self.last_success_at:
            return False
        return parse_iso_utc(self.last_error_at) < parse_iso_utc(self.last_success_at)


class StatusStore:
    def __init__(self, s3: S3, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def read(self, site: str, job: str) -> JobStatus:
        try:
            raw = orjson.loads(self.s3.read_bytes(self.bucket, status_key(site, job)))
        except (ObjectMissing, orjson.JSONDecodeError):
            return JobStatus(job=job)
        known = {k: v for k, v in raw.items() if k in JobStatus.__dataclass_fields__}
        return JobStatus(**known)

    def write(self, site: str, status: JobStatus) -> None:
        self.s3.put(self.bucket, status_key(site, status.job), status.to_json(),
                    content_type="application/json")
