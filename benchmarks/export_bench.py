"""Export benchmark: revisions per second and S3 requests per revision, through the real path.

Writes N revisions (default 2,000 of 500 events each) into a store bucket on moto's S3 server
(run in a process of its own), then runs one export cycle of a site — ``Exporter.cycle``, the
worker's code — in a fresh child process, counting every S3 request by operation with a
botocore event hook.  It does so twice: with server-side copies (the fleet's own credentials)
and streaming through the worker (a site reached by an assumed role).  Finally it checks the
customer bucket: every revision there byte for byte, ``index.csv`` with one row per revision.

    python benchmarks/export_bench.py [--revisions N] [--events E] [--json PATH]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path

import orjson
from harness import MotoServer, run_in_child, timed

from shared.clock import SystemClock
from shared.exports.destination import Destination
from shared.exports.exporter import Exporter
from shared.fleet.hints import RevisionTailCache
from shared.formats.times import iso_utc
from shared.metrics import Metrics
from shared.store.ledger import ExportLedger, ledger_key
from shared.store.revisions import EventStore, FileEnd, RevisionMeta
from shared.store.s3 import S3, make_client
from shared.store.sites import SiteConfig

STORE = "bench-store"
SITE = "bench"


def _client(endpoint: str) -> S3:
    return S3(make_client(endpoint, credentials={"AccessKeyId": "bench",
                                                 "SecretAccessKey": "bench"},
                          region_name="us-east-1"))


def write_revisions(endpoint: str, count: int, events: int) -> int:
    """Revisions 1..count written two days ago; returns their total size in bytes."""
    s3 = _client(endpoint)
    store = EventStore(s3, STORE)
    written_at = iso_utc(time.time() - 2 * 86400)
    total = 0
    for n in range(1, count + 1):
        base = 1_700_000_000 + n * events
        body = b"".join(orjson.dumps({"_p": f"user{n}-{i}@example.com", "_t": base + i,
                                      "_n": "Viewed Page", "Plan": "pro", "Amount": str(i)})
                        + b"\n" for i in range(events))
        meta = RevisionMeta(number=n, events=events, min_t=base, max_t=base + events - 1,
                            written_at=written_at, source="csv", source_key="bench.csv",
                            source_etag='"bench"', record_start=1, record_end=events,
                            byte_start=0, byte_end=len(body), line_end=events, rejected=0,
                            file_end=FileEnd.DONE, file_first_revision=n)
        store.write(SITE, meta, body)
        total += len(body)
    return total


def export_child(conn: Connection, endpoint: str, export_bucket: str, server_side: bool) -> None:
    s3 = _client(endpoint)
    requests: collections.Counter[str] = collections.Counter()
    s3.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: requests.update([model.name]))
    clock = SystemClock()
    exporter = Exporter(EventStore(s3, STORE), ExportLedger(s3, STORE), RevisionTailCache(None),
                        clock, Metrics())
    site = SiteConfig(site_id=SITE, import_bucket="bench-imports", base_filename="a.csv",
                      export_bucket=export_bucket)
    dest = replace(Destination.for_site(site, s3), server_side_copy=server_side)
    result, measured = timed(lambda: exporter.cycle(site, dest, 3600, time.time(), 0))
    conn.send({"exported": len(result.exported), "outcome": result.outcome,
               "bytes": result.bytes_copied, "requests": dict(requests), **measured})


def verify(endpoint: str, export_bucket: str, count: int) -> None:
    s3 = _client(endpoint)
    index = s3.read_bytes(export_bucket, "index.csv").decode().splitlines()
    assert len(index) == count + 1, f"index.csv has {len(index) - 1} rows, not {count}"
    assert index[1].startswith("revisions/1.json,") and \
        index[-1].startswith(f"revisions/{count}.json,")
    for n in (1, count // 2 or 1, count):
        original = s3.read_bytes(STORE, f"sites/{SITE}/revisions/{n:012d}.json")
        assert s3.read_bytes(export_bucket, f"revisions/{n}.json") == original, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=2000)
    parser.add_argument("--events", type=int, default=500, help="events per revision")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bucketbridge-export-bench-") as tmp:
        server = MotoServer(Path(tmp) / "moto.log")
        try:
            s3 = _client(server.endpoint)
            for bucket in (STORE, "bench-copy", "bench-stream"):
                s3.create_bucket(bucket)
            t0 = time.perf_counter()
            total = write_revisions(server.endpoint, args.revisions, args.events)
            print(f"wrote {args.revisions} revisions ({total / 2**20:.1f} MiB) in "
                  f"{time.perf_counter() - t0:.1f} s")
            results = {}
            for mode, bucket, server_side in (("server-side copy", "bench-copy", True),
                                              ("streamed", "bench-stream", False)):
                s3.delete(STORE, ledger_key(SITE))  # each mode exports everything afresh
                cpu_before = server.cpu_s()
                r = run_in_child(export_child, server.endpoint, bucket, server_side)
                r["moto_cpu_s"] = server.cpu_s() - cpu_before
                verify(server.endpoint, bucket, args.revisions)
                results[mode] = r
        finally:
            server.stop()
    print(f"\n{args.revisions:,} revisions x {args.events} events, {total / 2**20:.1f} MiB\n")
    header = f"{'mode':<18}{'wall s':>8}{'rev/s':>9}{'MiB/s':>8}{'CPU s':>7}{'RSS MiB':>9}" \
             f"{'requests':>10}{'per rev':>9}"
    print(header)
    print("-" * len(header))
    for mode, r in results.items():
        n_requests = sum(r["requests"].values())
        print(f"{mode:<18}{r['wall_s']:>8.2f}{r['exported'] / r['wall_s']:>9.0f}"
              f"{r['bytes'] / 2**20 / r['wall_s']:>8.1f}{r['cpu_s']:>7.2f}"
              f"{r['peak_rss_mib']:>9.1f}{n_requests:>10}{n_requests / r['exported']:>9.3f}")
    for mode, r in results.items():
        ops = ", ".join(f"{op} {n}" for op, n in sorted(r["requests"].items()))
        print(f"{mode}: {ops}; moto used {r['moto_cpu_s']:.2f} CPU s (not counted)")
    print("verification: OK, every revision in the bucket, index.csv complete")
    if args.json:
        args.json.write_text(json.dumps({"revisions": args.revisions, "events": args.events,
                                         "bytes": total, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
