"""What resuming a ``.csv.gz`` costs, with and without its gzip seek point: the part of
``import_bench.py --gzip --resume-at F,F,…`` that measures runs resuming the file at those
fractions (run from there; it imports this module only then)."""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from harness import MotoServer, run_in_child, timed
from import_bench import (
    BASE_FILENAME,
    IMPORT_BUCKET,
    STORE_BUCKET,
    UNLIMITED_BUDGET_S,
    Generated,
    upload,
)


def resume_child(conn: Connection, endpoint: str, site_id: str, fraction: float, rows: int,
                 keep_point: bool) -> None:
    """Import the first ``fraction`` of the file for site ``site_id`` (one run that stops after
    its first revision), then measure what resuming costs: the next run, from its start to its
    first checkpoint (2,048 records after the resume position).  ``keep_point=False`` deletes
    the gzip seek point first: the run inflates the file from its start, as before seek
    points."""
    from shared.clock import SystemClock
    from shared.fleet.hints import RevisionTailCache
    from shared.imports.scan import Importer
    from shared.metrics import Metrics
    from shared.store.rejectreports import RejectReports
    from shared.store.revisions import EventStore
    from shared.store.revisionwriter import Limits
    from shared.store.s3 import S3, make_client
    from shared.store.seekpoints import seek_point_key
    from shared.store.sites import SiteConfig

    s3 = S3(make_client(endpoint))
    store = EventStore(s3, STORE_BUCKET)
    site = SiteConfig(site_id=site_id, import_bucket=IMPORT_BUCKET, base_filename=BASE_FILENAME)

    def importer(limits: Limits) -> Importer:
        return Importer(store, RejectReports(s3, STORE_BUCKET, store), RevisionTailCache(None),
                        SystemClock(), Metrics(), limits)

    committed: list[int] = []
    importer(Limits(max_events_per_revision=max(1, int(rows * fraction)),
                    max_revision_bytes=2**40)).scan(
        site, s3, budget_s=UNLIMITED_BUDGET_S, should_stop=lambda: bool(committed),
        on_revision=committed.append)
    if not keep_point:
        s3.delete(STORE_BUCKET, seek_point_key(site_id))
    resumed = importer(Limits())
    answers = iter([False])  # go past the scan's own look, stop at the first checkpoint
    result, measured = timed(lambda: resumed.scan(site, s3, budget_s=UNLIMITED_BUDGET_S,
                                                  should_stop=lambda: next(answers, True)))
    conn.send({**measured, "rows": result.rows_imported, "outcome": result.outcome})
    conn.close()


def bench_resume(generated: Generated, key: str, fractions: list[float],
                 full_cpu_s: float, workdir: Path) -> list[dict[str, Any]]:
    """The CPU of a run resuming a gzip file at each fraction, with and without its seek
    point, against ``full_cpu_s`` (the import of the whole file)."""
    server = MotoServer(workdir / "moto-resume.log")
    out = []
    try:
        upload(server.endpoint, generated, key)
        for fraction in fractions:
            for keep in (True, False):
                site_id = f"resume-{int(fraction * 100)}-{'point' if keep else 'start'}"
                print(f"resume at {fraction:.0%} ({'seek point' if keep else 'from the start'})",
                      file=sys.stderr)
                got = run_in_child(resume_child, server.endpoint, site_id, fraction,
                                   generated.rows, keep)
                out.append({"fraction": fraction, "seek_point": keep, **got,
                            "of_full": got["cpu_s"] / full_cpu_s if full_cpu_s else 0.0})
    finally:
        server.stop()
    return out
