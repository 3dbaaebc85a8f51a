"""The fleet status summary: every site's last scan and export outcome in a few sharded documents
(``fleet/status/NNN.json``), so the fleet view and the scheduler's alert series read the whole
fleet with one request per shard instead of two per site.

It is a report, like ``sites/<site>/status/<job>.json`` (which keeps the full record for
``bucketbridge status``): jobs update their site's entry when its outcome, error or figures
change (``shared.fleet.reportmemo`` skips runs that changed nothing), so an idle site costs it
nothing.  Each entry also says since when the job has been in its current problem (or none),
which alerts use to tell a lasting problem from one bad run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from shared.formats.times import parse_iso_utc
from shared.store.s3 import S3
from shared.store.shards import Entries, Shard, ShardedDocuments

FLEET_STATUS_PREFIX = "fleet/status/"
FLEET_STATUS_SHARDS = 64
ERROR_TEXT_CHARS = 300

# Outcomes that are a problem by themselves (the job outcome names of workers.jobs.base).
PROBLEM_OUTCOMES = frozenset({"refused", "misconfigured", "bucket_error", "blocked", "error",
                              "retrying", "budget", "busy"})
# Problems that make a site "failing" in the fleet view (budget and busy are slow, not broken).
FAILING_PROBLEMS = frozenset({"bucket_error", "blocked", "error", "retrying"})


@dataclass(frozen=True)
class JobSummary:
    """One job kind's last known state for one site."""

    outcome: str | None = None
    at: str | None = None  # when this was recorded
    since: str | None = None  # since when ``problem`` has been what it is
    error: str | None = None
    error_at: str | None = None
    success_at: str | None = None
    backlog_files: int | None = None  # scan
    backlog_bytes: int | None = None  # scan
    lag_revisions: int | None = None  # export

    @property
    def error_unresolved(self) -> bool:
        if not self.error or not self.error_at:
            return False
        if not self.success_at:
            return True
        return parse_iso_utc(self.error_at) > parse_iso_utc(self.success_at)

    @property
    def problem(self) -> str | None:
        """The problem this state shows, or ``None`` when the job is fine."""
        if self.outcome in PROBLEM_OUTCOMES:
            return self.outcome
        return "error" if self.error_unresolved else None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, raw: Any) -> JobSummary:
        if not isinstance(raw, dict):
            return cls()
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    def after(self, new: JobSummary) -> JobSummary:
        """``new`` recorded over this state: keeps the last error until a new one, the last
        success until a new one, and ``since`` while the problem stays the same."""
        error, error_at = (new.error, new.error_at) if new.error else (self.error,
                                                                       self.error_at)
        merged = replace(new, error=error, error_at=error_at,
                         success_at=new.success_at or self.success_at,
                         backlog_files=_either(new.backlog_files, self.backlog_files),
                         backlog_bytes=_either(new.backlog_bytes, self.backlog_bytes),
                         lag_revisions=_either(new.lag_revisions, self.lag_revisions))
        same = self.outcome is not None and merged.problem == self.problem
        return replace(merged, since=self.since if same and self.since else new.at)


def _either(new: int | None, old: int | None) -> int | None:
    return new if new is not None else old


@dataclass(frozen=True)
class SiteSummary:
    site: str
    jobs: dict[str, JobSummary]

    def job(self, job: str) -> JobSummary:
        return self.jobs.get(job) or JobSummary()


class FleetStatus:
    def __init__(self, s3: S3, bucket: str, shards: int = FLEET_STATUS_SHARDS) -> None:
        self.docs = ShardedDocuments(s3, bucket, FLEET_STATUS_PREFIX, shards)

    def record(self, site: str, job: str, state: JobSummary) -> None:
        """Record ``state`` as ``site``'s latest ``job`` state (see ``JobSummary.after``)."""
        if state.error and len(state.error) > ERROR_TEXT_CHARS:
            state = replace(state, error=state.error[:ERROR_TEXT_CHARS - 1] + "…")

        def change(entries: Entries) -> bool:
            site_entry = entries.setdefault(site, {})
            previous = JobSummary.from_json(site_entry.get(job))
            site_entry[job] = previous.after(state).as_json()
            return True

        self.docs.update(self.docs.shard_of(site), change)

    def forget(self, site: str) -> None:
        """Drop a removed site's entry."""
        self.docs.update(self.docs.shard_of(site),
                         lambda entries: entries.pop(site, None) is not None)

    def read_all(self, known: dict[int, Shard] | None = None) -> Iterator[SiteSummary]:
        """Every site's summary: one listing and one read per shard, or per shard changed
        since ``known`` (see ``ShardedDocuments.read_all``)."""
        for shard in self.docs.read_all(known):
            yield from summaries(shard.entries)


def summaries(entries: Entries) -> Iterator[SiteSummary]:
    for site, jobs in entries.items():
        if isinstance(jobs, dict):
            yield SiteSummary(site, {job: JobSummary.from_json(raw) for job, raw in jobs.items()})
