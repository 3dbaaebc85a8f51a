"""One export run for one site: copy revisions to the customer's bucket, then the index files.

Order is what keeps a reader safe: revision files are written first, then the ledger commit
records them as exported, then ``index.csv`` and ``status.csv`` are rewritten from the ledger.
A run that dies anywhere re-copies at most the revisions it had not committed, and an index row
never names a file that was not written.  Revisions are exported strictly in order; a revision
that is missing or unreadable stops the run before it (``ExportBlocked``, raised once what came
before is committed), so the customer's numbering has no gap.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, TypeVar

from shared.clock import Clock
from shared.errors import ObjectMissing, PermanentError
from shared.exports.destination import Destination
from shared.fleet.hints import RevisionTailCache
from shared.fleet.idlememo import IdleMemo
from shared.formats.exportfiles import IndexRow, export_revision_name
from shared.formats.times import iso_utc, parse_iso_utc
from shared.metrics import Metrics
from shared.store.ledger import ExportLedger, Ledger
from shared.store.revisions import EventStore, RevisionMeta, RevisionUnreadable, revision_number
from shared.store.s3 import ObjectInfo
from shared.store.sites import SiteConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The ledger is rewritten whole at each commit: commit on a clock, not per revision, so a long
# history costs a few rewrites per run; a crash re-copies at most this much work.
COMMIT_EVERY_S = 15.0
# Revisions looked at per step, and requests in flight at once: a copy is one round trip, so a
# few in parallel hide most of S3's latency without holding anything big in memory.
COPY_WINDOW = 32
COPY_CONCURRENCY = 8


class ExportOutcome(StrEnum):
    DONE = "done"  # everything exportable was exported
    BUDGET = "budget"  # stopped at the budget with work left
    INTERRUPTED = "interrupted"  # stopped early when asked to (shutdown, lease lost)


class RevisionUnavailable(PermanentError):
    """A revision to export is missing from the store or cannot be read."""


@dataclass
class ExportResult:
    outcome: ExportOutcome = ExportOutcome.DONE
    exported: list[int] = field(default_factory=list)
    position: int = 0
    total_revisions: int = 0
    bytes_copied: int = 0
    next_first: int | None = None  # re-export: where the follow-up run starts

    @property
    def lag_revisions(self) -> int:
        return max(0, self.total_revisions - self.position)


class ExportBlocked(PermanentError):
    """The run stopped before a revision that cannot be exported (``result`` says what was
    exported first, and is committed); the next run tries that revision again."""

    def __init__(self, reason: str, result: ExportResult) -> None:
        super().__init__(reason)
        self.result = result


class _Step(NamedTuple):
    number: int
    info: ObjectInfo
    meta: RevisionMeta
    export: bool  # False: written before the lookback window, passed over


@dataclass
class _Plan:
    steps: list[_Step]
    last_window: bool  # a gap, a revision not exportable yet, or a bad one ends the cycle
    blocked: str | None = None


class Exporter:
    def __init__(self, store: EventStore, ledger: ExportLedger, tail_cache: RevisionTailCache,
                 clock: Clock, metrics: Metrics) -> None:
        self.store = store
        self.ledger = ledger
        self.tail_cache = tail_cache
        self.idle = IdleMemo.beside(tail_cache)
        self.clock = clock
        self.metrics = metrics

    def _total(self, site: str) -> int:
        return self.store.latest_number(site, hint=self.tail_cache.get(site))

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
        ledger = self.ledger.load(sid, dest.location)
        result = ExportResult(position=ledger.position)
        pending: list[IndexRow] = []
        position = ledger.position
        last_commit_s = self.clock.monotonic_s()
        blocked: str | None = None
        listing = iter(self.store.objects(sid, after=position))
        first = list(itertools.islice(listing, 1))
        # Nothing after the position (revisions are numbered 1..N without gaps): nothing new,
        # and the total is the position; otherwise the total is looked up.
        total = self._total(sid) if first else position
        candidates = itertools.chain(first, listing)
        with ThreadPoolExecutor(max_workers=COPY_CONCURRENCY,
                                thread_name_prefix=f"export-{sid}") as pool:
            while blocked is None:
                if self.clock.monotonic_s() >= deadline or should_stop():
                    result.outcome = self._stopped(deadline)
                    break
                window = list(itertools.islice(candidates, COPY_WINDOW))
                if not window:
                    break
                plan = self._plan(sid, position, window, cutoff_s, lookback_start_s, pool)
                blocked = plan.blocked
                copies = pool.map(lambda step: self._copy(sid, step.number, step.info, dest)
                                  if step.export else None, plan.steps)
                for step, error in zip(plan.steps, _settled(copies), strict=True):
                    if error is not None:
                        blocked = str(error)
                        break
                    if step.export:
                        pending.append(IndexRow(step.number, step.meta.min_t, step.meta.max_t))
                        result.exported.append(step.number)
                        result.bytes_copied += step.info.size_bytes
                    position = step.number
                if pending and self.clock.monotonic_s() - last_commit_s >= COMMIT_EVERY_S:
                    ledger = self._commit(sid, ledger, position, pending, dest)
                    pending = []
                    last_commit_s = self.clock.monotonic_s()
                if plan.last_window:
                    break
        if position != ledger.position or pending:
            ledger = self._commit(sid, ledger, position, pending, dest)
        self._publish(sid, dest, ledger, total)
        result.position = ledger.position
        result.total_revisions = max(total, ledger.position)
        self._observe(sid, result, blocked)
        return result

    def _plan(self, site: str, position: int, window: list[ObjectInfo], cutoff_s: float,
              lookback_start_s: float, pool: ThreadPoolExecutor) -> _Plan:
        """What to do with each revision of ``window``, in order, for its contiguous prefix
        that may be exported or passed over; and whether the cycle ends after it (a gap, a
        bad revision, or one not exportable yet)."""
        numbered = []
        for offset, info in enumerate(window):
            expected = position + 1 + offset
            if revision_number(info.key) != expected:
                break
            numbered.append((expected, info))
        heads = pool.map(lambda item: self._head(site, item[0]), numbered)
        steps: list[_Step] = []
        for (number, info), head in zip(numbered, _settled(heads), strict=True):
            if isinstance(head, RevisionUnavailable):
                return _Plan(steps, True, str(head))
            written_s = parse_iso_utc(head.written_at)
            if written_s >= cutoff_s:
                return _Plan(steps, True)  # this and every later revision are not exportable yet
            steps.append(_Step(number, info, head, export=written_s >= lookback_start_s))
        if len(numbered) < len(window):
            return _Plan(steps, True, self._missing(site, position + 1 + len(numbered)))
        return _Plan(steps, False)

    # -- re-export of a range -----------------------------------------------------------------

    def reexport(self, site: SiteConfig, dest: Destination, first: int, last: int | None,
                 budget_s: float, should_stop: Callable[[], bool] = lambda: False,
                 ) -> ExportResult:
        """Copy again the exported revisions numbered ``first..last``; the position stays."""
        sid = site.site_id
        deadline = self.clock.monotonic_s() + budget_s
        ledger = self.ledger.load(sid, dest.location)
        total = self._total(sid)
        result = ExportResult(position=ledger.position, total_revisions=total)
        upper = ledger.position if last is None else min(last, ledger.position)
        blocked: str | None = None
        for row in ledger.rows:
            if row.number < first or row.number > upper:
                continue
            if self.clock.monotonic_s() >= deadline or should_stop():
                result.outcome, result.next_first = self._stopped(deadline), row.number
                break
            info = self.store.info(sid, row.number)
            try:
                if info is None:
                    raise RevisionUnavailable(self._missing(sid, row.number))
                self._copy(sid, row.number, info, dest)
            except RevisionUnavailable as exc:
                blocked = str(exc)
                break
            result.exported.append(row.number)
            result.bytes_copied += info.size_bytes
        dest.publish_index(ledger)
        dest.publish_status(ledger, total)
        self._observe(sid, result, blocked)
        return result

    # -- status.csv only ----------------------------------------------------------------------

    def refresh_status(self, site: SiteConfig, dest: Destination) -> ExportResult:
        """Rewrite ``status.csv`` so ``Total Revisions`` follows new revisions quickly."""
        sid = site.site_id
        ledger = self.ledger.load(sid, dest.location)
        total = self._total(sid)
        self._publish(sid, dest, ledger, total, index=False)
        return ExportResult(position=ledger.position, total_revisions=total)

    def _publish(self, site: str, dest: Destination, ledger: Ledger, total: int, *,
                 index: bool = True) -> None:
        """Rewrite ``index.csv`` and ``status.csv`` in the customer's bucket, each only when
        its content changed since it was last written (an idle site's export writes
        nothing there)."""
        if index:
            printed = dest.index_fingerprint(ledger)
            if not self.idle.export_file_current(site, "index.csv", printed):
                dest.publish_index(ledger)
                self.idle.export_file_written(site, "index.csv", printed)
        printed = dest.status_fingerprint(ledger, total)
        if not self.idle.export_file_current(site, "status.csv", printed):
            dest.publish_status(ledger, total)
            self.idle.export_file_written(site, "status.csv", printed)

    def _stopped(self, deadline_mono_s: float) -> ExportOutcome:
        """Why a run stopped with work left: its budget ran out, or it was asked to stop."""
        if self.clock.monotonic_s() >= deadline_mono_s:
            return ExportOutcome.BUDGET
        return ExportOutcome.INTERRUPTED

    # -- steps --------------------------------------------------------------------------------

    def _missing(self, site: str, number: int) -> str:
        return f"revision {number} is missing from the store ({self.store.location(site, number)})"

    def _head(self, site: str, number: int) -> RevisionMeta:
        """The revision's metadata; ``RevisionUnavailable`` if it cannot be exported."""
        try:
            found = self.store.head(site, number)
        except RevisionUnreadable as exc:
            raise RevisionUnavailable(str(exc)) from None
        if found is None:
            raise RevisionUnavailable(self._missing(site, number))
        return found[0]

    def _copy(self, site: str, number: int, info: ObjectInfo, dest: Destination) -> None:
        """Copy revision ``number`` to the customer; ``RevisionUnavailable`` if it is gone.
        Safe to call from several threads."""
        target = dest.key(export_revision_name(number))
        try:
            if dest.server_side_copy:
                dest.s3.copy(self.store.bucket, info.key, dest.bucket, target,
                             size_bytes=info.size_bytes)
            else:
                with self.store.open(site, number) as stream:
                    dest.s3.upload(dest.bucket, target, stream,
                                   content_type="application/x-ndjson")
        except ObjectMissing:
            raise RevisionUnavailable(self._missing(site, number)) from None
        self.metrics.export_revisions.inc()
        self.metrics.export_bytes.inc(info.size_bytes)
        logger.debug("site=%s exported revision %d -> s3://%s/%s", site, number, dest.bucket,
                     target)

    def _commit(self, site: str, ledger: Ledger, position: int, rows: list[IndexRow],
                dest: Destination) -> Ledger:
        return self.ledger.commit(site, ledger, position, rows, iso_utc(self.clock.now_s()),
                                  dest.location)

    def _observe(self, site: str, result: ExportResult, blocked: str | None) -> None:
        """Metrics, then ``ExportBlocked`` if the run stopped before a revision it could not
        export (what came before is committed and published by then)."""
        if blocked is not None:
            raise ExportBlocked(blocked, result)
        if result.outcome is ExportOutcome.BUDGET:
            self.metrics.budget_exhausted.labels("export").inc()


def _settled(results: Iterator[T]) -> Iterator[T | RevisionUnavailable]:
    """The results of ``pool.map`` in order, with a ``RevisionUnavailable`` raised by a task
    yielded as a value (so the revisions before it still count)."""
    while True:
        try:
            yield next(results)
        except StopIteration:
            return
        except RevisionUnavailable as exc:
            yield exc
            return
