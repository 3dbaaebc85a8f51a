"""One export run for one site: copy revisions to the customer's bucket, then the index files.

Order is what keeps a reader safe: revision files are written first, then the ledger commit
records them as exported, then ``index.csv`` and ``status.csv`` are rewritten from the ledger.
A run that dies anywhere re-copies at most the revisions it had not committed, and an index row
never names a file that was not written.  Revisions are exported strictly in order; a revision
that is missing or unreadable stops the run before it, so the customer's numbering has no gap.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

from shared.clock import Clock
from shared.errors import ObjectMissing
from shared.fleet.hints import RevisionTailCache
from shared.formats.exportfiles import (
    IndexRow,
    export_key,
    export_revision_name,
    format_index,
    format_status,
)
from shared.formats.times import iso_utc, parse_iso_utc
from shared.metrics import Metrics
from shared.store.ledger import ExportLedger, Ledger
from shared.store.revisions import (
    EventStore,
    RevisionMeta,
    RevisionUnreadable,
    revision_key,
    revision_number,
)
from shared.store.s3 import S3, ObjectInfo
from shared.store.sites import SiteConfig

logger = logging.getLogger(__name__)

# The ledger is rewritten whole at each commit: commit on a clock, not per revision, so a long
# history costs a few rewrites per run; a crash re-copies at most this much work.
COMMIT_EVERY_S = 15.0
# Revisions looked at per step, and requests in flight at once: a copy is one round trip, so a
# few in parallel hide most of S3's latency without holding anything big in memory.
COPY_WINDOW = 32
COPY_CONCURRENCY = 8


@dataclass
class ExportResult:
    outcome: str = "done"  # "done", "budget" (work left), "blocked" (stopped before a bad one)
    exported: list[int] = field(default_factory=list)
    position: int = 0
    total_revisions: int = 0
    bytes_copied: int = 0
    error: str | None = None
    next_first: int | None = None  # re-export: where the follow-up run starts

    @property
    def lag_revisions(self) -> int:
        return max(0, self.total_revisions - self.position)


class _Step(NamedTuple):
    number: int
    info: ObjectInfo
    meta: RevisionMeta
    export: bool  # False: written before the lookback window, passed over


@dataclass(frozen=True)
class Destination:
    """The customer's export bucket and how to reach it."""

    s3: S3
    bucket: str
    prefix: str
    server_side_copy: bool  # the fleet's own credentials can read the store and write here

    @classmethod
    def for_site(cls, site: SiteConfig, s3: S3) -> Destination:
        assert site.export_bucket is not None
        return cls(s3=s3, bucket=site.export_bucket, prefix=site.export_prefix,
                   server_side_copy=site.role_arn is None)


class Exporter:
    def __init__(self, store: EventStore, ledger: ExportLedger, tail_cache: RevisionTailCache,
                 clock: Clock, metrics: Metrics) -> None:
        self.store = store
        self.ledger = ledger
        self.tail_cache = tail_cache
        self.clock = clock
        self.metrics = metrics

    # -- regular cycle ------------------------------------------------------------------------

    def cycle(self, site: SiteConfig, dest: Destination, budget_s: float, cutoff_s: float,
              lookback_start_s: float, should_stop: Callable[[], bool] = lambda: False,
              ) -> ExportResult:
        """Export, in order, the revisions after the position written before ``cutoff_s``;
        those written before ``lookback_start_s`` are passed over.  Returns at the budget.

        Revisions are looked at and copied a window at a time, the requests of a window in
        parallel; only the window's contiguous exportable prefix is copied, so a missing
        revision never leaves a later one in the customer's bucket."""
        sid = site.site_id
        deadline = self.clock.monotonic_s() + budget_s
        ledger = self.ledger.load(sid)
        result = ExportResult(position=ledger.position)
        total = self.store.latest_number(sid, hint=self.tail_cache.get(sid))
        pending: list[IndexRow] = []
        position = ledger.position
        last_commit_s = self.clock.monotonic_s()
        candidates = iter(self.store.numbers(sid, after=position))
        with ThreadPoolExecutor(max_workers=COPY_CONCURRENCY,
                                thread_name_prefix=f"export-{sid}") as pool:
            while result.outcome == "done":
                if self.clock.monotonic_s() >= deadline or should_stop():
                    result.outcome = "budget"
                    break
                window = list(itertools.islice(candidates, COPY_WINDOW))
                if not window:
                    break
                plan, stop = self._plan(sid, position, window, cutoff_s, lookback_start_s,
                                        pool, result)
                copies = pool.map(lambda step: self._copy(sid, step.number, step.info, dest)
                                  if step.export else None, plan)
                for step, error in zip(plan, copies, strict=True):
                    if error is not None:
                        result.outcome, result.error = "blocked", error
                        stop = True
                        break
                    if step.export:
                        pending.append(IndexRow(step.number, step.meta.min_t, step.meta.max_t))
                        result.exported.append(step.number)
                        result.bytes_copied += step.info.size_bytes
                    position = step.number
                if pending and self.clock.monotonic_s() - last_commit_s >= COMMIT_EVERY_S:
                    ledger = self._commit(sid, ledger, position, pending)
                    pending = []
                    last_commit_s = self.clock.monotonic_s()
                if stop:
                    break
        if position != ledger.position or pending:
            ledger = self._commit(sid, ledger, position, pending)
        self._publish(sid, ledger, dest, total)
        result.position = ledger.position
        result.total_revisions = max(total, ledger.position)
        self._observe(sid, result)
        return result

    def _plan(self, site: str, position: int, window: list[ObjectInfo], cutoff_s: float,
              lookback_start_s: float, pool: ThreadPoolExecutor, result: ExportResult,
              ) -> tuple[list[_Step], bool]:
        """What to do with each revision of ``window``, in order, for its contiguous prefix
        that may be exported or passed over; and whether the cycle stops after it (a gap, a
        bad revision, or one not exportable yet)."""
        numbered = []
        for offset, info in enumerate(window):
            expected = position + 1 + offset
            if revision_number(info.key) != expected:
                break
            numbered.append((expected, info))
        heads = list(pool.map(lambda item: self._head(site, item[0]), numbered))
        plan: list[_Step] = []
        for (number, info), head in zip(numbered, heads, strict=True):
            if isinstance(head, str):
                result.outcome, result.error = "blocked", head
                return plan, True
            written_s = parse_iso_utc(head.written_at)
            if written_s >= cutoff_s:
                return plan, True  # this and every later revision are not exportable yet
            plan.append(_Step(number, info, head, export=written_s >= lookback_start_s))
        if len(numbered) < len(window):
            gap = position + 1 + len(numbered)
            result.outcome, result.error = "blocked", self._missing(site, gap)
            return plan, True
        return plan, False

    # -- re-export of a range -----------------------------------------------------------------

    def reexport(self, site: SiteConfig, dest: Destination, first: int, last: int | None,
                 budget_s: float, should_stop: Callable[[], bool] = lambda: False,
                 ) -> ExportResult:
        """Copy again the exported revisions numbered ``first..last``; the position stays."""
        sid = site.site_id
        deadline = self.clock.monotonic_s() + budget_s
        ledger = self.ledger.load(sid)
        total = self.store.latest_number(sid, hint=self.tail_cache.get(sid))
        result = ExportResult(position=ledger.position, total_revisions=total)
        upper = ledger.position if last is None else min(last, ledger.position)
        for row in ledger.rows:
            if row.number < first or row.number > upper:
                continue
            if self.clock.monotonic_s() >= deadline or should_stop():
                result.outcome, result.next_first = "budget", row.number
                break
            info = self.store.s3.head(self.store.bucket, revision_key(sid, row.number))
            error = self._missing(sid, row.number) if info is None else \
                self._copy(sid, row.number, info, dest)
            if error is not None or info is None:
                result.outcome, result.error = "blocked", error
                break
            result.exported.append(row.number)
            result.bytes_copied += info.size_bytes
        self._publish(sid, ledger, dest, total)
        self._observe(sid, result)
        return result

    # -- status.csv only ----------------------------------------------------------------------

    def refresh_status(self, site: SiteConfig, dest: Destination) -> ExportResult:
        """Rewrite ``status.csv`` so ``Total Revisions`` follows new revisions quickly."""
        sid = site.site_id
        ledger = self.ledger.load(sid)
        total = self.store.latest_number(sid, hint=self.tail_cache.get(sid))
        dest.s3.put(dest.bucket, export_key(dest.prefix, "status.csv"),
                    format_status(total, len(ledger.rows), ledger.max_exported_t),
                    content_type="text/csv")
        result = ExportResult(position=ledger.position, total_revisions=total)
        self.metrics.export_lag.labels(sid).set(result.lag_revisions)
        return result

    # -- steps --------------------------------------------------------------------------------

    def _missing(self, site: str, number: int) -> str:
        return (f"revision {number} is missing from the store "
                f"(s3://{self.store.bucket}/{revision_key(site, number)})")

    def _head(self, site: str, number: int) -> RevisionMeta | str:
        """The revision's metadata, or why it cannot be exported."""
        try:
            found = self.store.head(site, number)
        except RevisionUnreadable as exc:
            return str(exc)
        return found[0] if found is not None else self._missing(site, number)

    def _copy(self, site: str, number: int, info: ObjectInfo, dest: Destination) -> str | None:
        """Copy revision ``number`` to the customer; the error if it is gone, else ``None``.
        Safe to call from several threads."""
        target = export_key(dest.prefix, export_revision_name(number))
        try:
            if dest.server_side_copy:
                dest.s3.copy(self.store.bucket, info.key, dest.bucket, target,
                             size_bytes=info.size_bytes)
            else:
                with self.store.open(site, number) as stream:
                    dest.s3.upload(dest.bucket, target, stream,
                                   content_type="application/x-ndjson")
        except ObjectMissing:
            return self._missing(site, number)
        self.metrics.export_revisions.labels(site).inc()
        self.metrics.export_bytes.labels(site).inc(info.size_bytes)
        logger.debug("site=%s exported revision %d -> s3://%s/%s", site, number, dest.bucket,
                     target)
        return None

    def _commit(self, site: str, ledger: Ledger, position: int, rows: list[IndexRow]) -> Ledger:
        return self.ledger.commit(site, ledger, position, rows, iso_utc(self.clock.now_s()))

    def _publish(self, site: str, ledger: Ledger, dest: Destination, total: int) -> None:
        """index.csv, then status.csv: both from the committed ledger, so after the files
        they name; once per run."""
        dest.s3.put(dest.bucket, export_key(dest.prefix, "index.csv"), format_index(ledger.rows),
                    content_type="text/csv")
        dest.s3.put(dest.bucket, export_key(dest.prefix, "status.csv"),
                    format_status(max(total, ledger.position), len(ledger.rows),
                                  ledger.max_exported_t), content_type="text/csv")

    def _observe(self, site: str, result: ExportResult) -> None:
        self.metrics.export_lag.labels(site).set(result.lag_revisions)
        if result.outcome != "blocked":
            self.metrics.export_last_success.labels(site).set(self.clock.now_s())
        if result.outcome == "budget":
            self.metrics.budget_exhausted.labels("export", site).inc()
