"""Import throughput benchmark: one large CSV file through the real import path.

Generates a CSV of ``--rows`` rows (streamed to a temporary directory, optionally gzipped),
uploads it to moto's S3 server, imports it with ``shared.imports.scan.Importer.scan`` and checks the
revisions it wrote.  Beside it, DuckDB converts the same local file to NDJSON, once with its
default thread count and once with ``threads=1``, as a yardstick for the CPU cost per row.

Each measured step runs in a fresh ``spawn`` child, so its CPU time (``getrusage`` of that
process around the work only) and its peak RSS are its own, not the generator's; the S3 server
runs in a process of its own so that serving requests is not billed to the importer.

    python benchmarks/import_bench.py [--rows N] [--gzip] [--keep] [--json PATH]
        [--engine auto|fast|python] [--resume-at 0.1,0.5,0.9]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from harness import MotoServer, run_in_child, timed

HEADER = ("Identity", "Timestamp", "Event", "Prop:Email", "Prop:Plan", "Prop:Amount",
          "Prop:Company", "Prop:City")
SITE_ID = "bench"
STORE_BUCKET = "bench-store"
IMPORT_BUCKET = "bench-imports"
BASE_FILENAME = "events.csv"
BATCH_ROWS = 10_000
SEED = 20_240_101
START_T = 1_704_067_200  # 2024-01-01T00:00:00Z
UNLIMITED_BUDGET_S = 1e9

# "" in _EVENTS makes a property-set row; every row has a Plan, so none is empty.
_EVENTS = ("Viewed Page", "Viewed Page", "Viewed Page", "Logged In", "Logged In", "Signed Up",
           "Added to Cart", "Purchased", "Upgraded Plan", "Cancelled Subscription", "")
_PLANS = ("Free", "Starter", "Pro", "Business, annual", "Enterprise (EU, 3 yr)")
_COMPANIES = ("Acme, Inc.", 'Widgets "R" Us, LLC', "Globex", "Initech", "Müller & Söhne GmbH",
              "株式会社サンプル", "Smith, Jones and Partners", "O'Reilly Media", "", "")
_CITIES = ("São Paulo", "Zürich", "東京", "Kraków", "Москва", "Reykjavík", "New York, NY",
           "Montréal", "København", "")
_FIRST = ("anna", "bob", "chen", "dmitri", "elif", "fatima", "george", "hana", "ivan", "jose")
_DOMAINS = ("example.com", "mail.example.org", "corp.example.net", "example.co.uk")

# -- the input file ------------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    path: Path
    rows: int
    csv_bytes: int  # uncompressed
    file_bytes: int  # on disk (compressed when gzipped)
    first_row: tuple[str, ...]
    last_row: tuple[str, ...]


def generate_csv(path: Path, rows: int, gzipped: bool) -> Generated:
    """Write ``rows`` deterministic, realistic rows batch by batch (never the whole file)."""
    rng = random.Random(SEED)
    people = [f"{rng.choice(_FIRST)}.{n}@{rng.choice(_DOMAINS)}" if n % 5 else f"u_{n:07d}"
              for n in range(100_000)]
    amounts = [f"{rng.randint(100, 99_999) / 100:.2f}" for _ in range(2_000)] + [""] * 200
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    csv_bytes = 0
    t = START_T
    first: tuple[str, ...] = ()
    last: tuple[str, ...] = ()
    with path.open("wb") as raw:
        gz = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) if gzipped else None
        write = gz.write if gz is not None else raw.write
        for start in range(0, rows, BATCH_ROWS):
            n = min(BATCH_ROWS, rows - start)
            idents = rng.choices(people, k=n)
            stamps = list(itertools.accumulate(rng.choices((0, 1, 1, 2, 3), k=n), initial=t))[1:]
            t = stamps[-1]
            emails = [i if "@" in i and keep else ""
                      for i, keep in zip(idents, rng.choices((True, False), k=n), strict=True)]
            batch = list(zip(idents, map(str, stamps), rng.choices(_EVENTS, k=n), emails,
                             rng.choices(_PLANS, k=n), rng.choices(amounts, k=n),
                             rng.choices(_COMPANIES, k=n), rng.choices(_CITIES, k=n),
                             strict=True))
            first = first or batch[0]
            last = batch[-1]
            writer.writerows(batch)
            data = text.getvalue().encode("utf-8")
            text.seek(0)
            text.truncate()
            write(data)
            csv_bytes += len(data)
        if gz is not None:
            gz.close()
    return Generated(path=path, rows=rows, csv_bytes=csv_bytes, file_bytes=path.stat().st_size,
                     first_row=first, last_row=last)


def expected_line(row: Sequence[str]) -> dict[str, Any]:
    """The export line a generated row must become (written independently of the product)."""
    line: dict[str, Any] = {"_p": row[0].strip(), "_t": int(row[1])}
    if row[2].strip():
        line["_n"] = row[2].strip()
    for name, value in zip(HEADER[3:], row[3:], strict=True):
        if value:
            line[name.removeprefix("Prop:")] = value
    return line


# -- processes -----------------------------------------------------------------------------


def import_child(conn: Connection, endpoint: str, profile_path: str | None,
                 engine: str = "auto") -> None:
    """One scan of the benchmark site, as a worker would run it, in this (fresh) process."""
    from shared.clock import SystemClock
    from shared.fleet.hints import RevisionTailCache
    from shared.imports.scan import Importer
    from shared.metrics import Metrics
    from shared.store.rejectreports import RejectReports
    from shared.store.revisions import EventStore
    from shared.store.s3 import S3, make_client
    from shared.store.sites import SiteConfig

    s3 = S3(make_client(endpoint))
    metrics = Metrics()
    store = EventStore(s3, STORE_BUCKET)
    importer = Importer(store, RejectReports(s3, STORE_BUCKET, store), RevisionTailCache(None),
                        SystemClock(), metrics, csv_engine=engine)
    site = SiteConfig(site_id=SITE_ID, import_bucket=IMPORT_BUCKET, base_filename=BASE_FILENAME)

    def scan() -> Any:
        return importer.scan(site, s3, budget_s=UNLIMITED_BUDGET_S)

    if profile_path:
        import cProfile

        profiler = cProfile.Profile()
        result, measured = timed(lambda: profiler.runcall(scan))
        profiler.dump_stats(profile_path)
    else:
        result, measured = timed(scan)
    read = metrics.registry.get_sample_value("bucketbridge_import_read_bytes_total")
    conn.send({**measured, "outcome": result.outcome, "rows": result.rows_imported,
               "revisions": result.revisions, "files_completed": result.files_completed,
               "files_failed": result.files_failed, "bytes_read": int(read or 0)})
    conn.close()


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_child(conn: Connection, csv_path: str, out_path: str, threads: int | None) -> None:
    """The same file to NDJSON with DuckDB: the same columns, renamed as in the export lines."""
    import duckdb

    db = duckdb.connect()
    if threads is not None:
        db.execute(f"SET threads = {int(threads)}")
    row = db.execute("SELECT current_setting('threads')").fetchone()
    props = ", ".join(f'"{h}" AS "{h.removeprefix("Prop:")}"' for h in HEADER[3:])
    sql = (f'COPY (SELECT "Identity" AS _p, CAST("Timestamp" AS BIGINT) AS _t, "Event" AS _n, '
           f"{props} FROM read_csv({_sql_text(csv_path)}, header = true, all_varchar = true)) "
           f"TO {_sql_text(out_path)} (FORMAT json)")
    _, measured = timed(lambda: db.execute(sql))
    db.close()
    conn.send({**measured, "threads": int(row[0]) if row else 0})
    conn.close()


# -- the benchmark -------------------------------------------------------------------------


@dataclass
class Measure:
    tool: str
    rows: int
    size_bytes: int
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    revisions: int | None = None

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s else 0.0


def upload(endpoint: str, generated: Generated, key: str) -> float:
    from boto3.s3.transfer import TransferConfig

    from shared.store.s3 import S3, make_client

    client = make_client(endpoint)
    s3 = S3(client)
    for bucket in (STORE_BUCKET, IMPORT_BUCKET):
        s3.create_bucket(bucket)
    started = time.perf_counter()
    client.upload_file(str(generated.path), IMPORT_BUCKET, key,
                       Config=TransferConfig(multipart_chunksize=64 * 1024 * 1024))
    return time.perf_counter() - started


def verify_import(endpoint: str, generated: Generated, key: str,
                  outcome: dict[str, Any]) -> list[str]:
    """What is wrong with the revisions the import wrote (nothing: an empty list)."""
    from shared.store.revisions import EventStore, revision_number
    from shared.store.s3 import S3, make_client

    s3 = S3(make_client(endpoint))
    problems = []
    if outcome["outcome"] != "done" or outcome["files_completed"] != [key]:
        problems.append(f"scan ended {outcome['outcome']!r}, completed "
                        f"{outcome['files_completed']}, failed {outcome['files_failed']}")
    numbers = [revision_number(i.key) for i in EventStore(s3, STORE_BUCKET).objects(SITE_ID)]
    if numbers != list(range(1, len(numbers) + 1)) or len(numbers) != outcome["revisions"]:
        problems.append(f"revisions are not 1..{outcome['revisions']}: {numbers}")
    lines = 0
    first = last = b""
    for info in EventStore(s3, STORE_BUCKET).objects(SITE_ID):
        body = s3.read_bytes(STORE_BUCKET, info.key)
        lines += body.count(b"\n")
        first = first or body.partition(b"\n")[0]
        last = body.rstrip(b"\n").rpartition(b"\n")[2] or last
    if lines != generated.rows:
        problems.append(f"revisions hold {lines} lines, expected {generated.rows}")
    for what, got, row in (("first", first, generated.first_row),
                           ("last", last, generated.last_row)):
        want = expected_line(row)
        if not got or list(json.loads(got).items()) != list(want.items()):
            problems.append(f"{what} line {got.decode('utf-8', 'replace')} != {want}")
    if outcome["bytes_read"] != generated.csv_bytes:
        problems.append(f"read {outcome['bytes_read']} bytes, the CSV has {generated.csv_bytes}")
    return problems


def count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            lines += chunk.count(b"\n")
    return lines


def print_table(generated: Generated, measures: list[Measure], gzipped: bool) -> None:
    kind = f"gzip ({generated.file_bytes / 2**20:.1f} MiB compressed)" if gzipped else "plain"
    print(f"\n{generated.rows:,} rows x {len(HEADER)} columns, "
          f"{generated.csv_bytes / 2**20:.1f} MiB CSV, {kind}\n")
    head = (f"{'tool':<30} {'rows':>10} {'bytes':>13} {'wall s':>8} {'rows/s':>10} "
            f"{'CPU s':>8} {'peak RSS MiB':>13} {'revisions':>10}")
    print(head)
    print("-" * len(head))
    for m in measures:
        revisions = "-" if m.revisions is None else str(m.revisions)
        print(f"{m.tool:<30} {m.rows:>10,} {m.size_bytes:>13,} {m.wall_s:>8.2f} "
              f"{m.rows_per_s:>10,.0f} {m.cpu_s:>8.2f} {m.peak_rss_mib:>13.1f} {revisions:>10}")


def bench_import(workdir: Path, generated: Generated, key: str, profile_path: str | None,
                 engine: str = "auto") -> tuple[dict[str, Any], list[str]]:
    """Serve, upload, import in a fresh child, verify; the child's figures and any problems."""
    server = MotoServer(workdir / "moto.log")
    try:
        upload_s = upload(server.endpoint, generated, key)
        print(f"uploaded to {server.endpoint} in {upload_s:.1f} s; importing", file=sys.stderr)
        server_cpu0 = server.cpu_s()
        imported = run_in_child(import_child, server.endpoint, profile_path, engine)
        imported["moto_server_cpu_s"] = server.cpu_s() - server_cpu0
        return imported, verify_import(server.endpoint, generated, key, imported)
    finally:
        server.stop()


def bench_duckdb(workdir: Path, generated: Generated) -> tuple[list[dict[str, Any]], list[str]]:
    results, problems = [], []
    for threads in (None, 1):
        out = workdir / f"duckdb-{threads or 'default'}.json"
        print(f"DuckDB to NDJSON (threads={threads or 'default'})", file=sys.stderr)
        result = run_in_child(duckdb_child, str(generated.path), str(out), threads)
        result["lines"] = count_lines(out)
        out.unlink()
        if result["lines"] != generated.rows:
            problems.append(f"DuckDB wrote {result['lines']} lines, expected {generated.rows}")
        results.append(result)
    return results, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="data rows (1,000,000)")
    parser.add_argument("--gzip", action="store_true", help="import a .csv.gz file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--profile", metavar="PATH",
                        help="run the import under cProfile and write its stats to PATH "
                             "(the figures then include the profiler's overhead)")
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB yardstick")
    parser.add_argument("--engine", choices=("auto", "fast", "python"), default="auto",
                        help="the import's CSV engine (BUCKETBRIDGE_CSV_ENGINE; auto)")
    parser.add_argument("--resume-at", metavar="F,F,…", default="",
                        help="with --gzip: also measure runs resuming at these fractions of "
                             "the file (e.g. 0.1,0.5,0.9), with and without the seek point")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)

    workdir = Path(tempfile.mkdtemp(prefix="bucketbridge-bench-"))
    key = BASE_FILENAME + (".gz" if args.gzip else "")
    try:
        started = time.perf_counter()
        generated = generate_csv(workdir / key, args.rows, args.gzip)
        print(f"generated {workdir / key} ({generated.file_bytes:,} bytes) in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
        imported, problems = bench_import(workdir, generated, key, args.profile,
                                          args.engine)
        duck, duck_problems = ([], []) if args.no_duckdb else bench_duckdb(workdir, generated)
        problems += duck_problems
        fractions = [float(f) for f in args.resume_at.split(",") if f.strip()]
        resumes: list[dict[str, Any]] = []
        if fractions and args.gzip:
            from gzip_resume import bench_resume

            resumes = bench_resume(generated, key, fractions, imported["cpu_s"], workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    measures = [Measure(f"bucketbridge ({args.engine}, moto S3)", imported["rows"],
                        generated.file_bytes,
                        imported["wall_s"], imported["cpu_s"], imported["peak_rss_mib"],
                        imported["revisions"])]
    measures += [Measure(f"duckdb (local, threads={d['threads']})", d["lines"],
                         generated.file_bytes, d["wall_s"], d["cpu_s"], d["peak_rss_mib"])
                 for d in duck]
    print_table(generated, measures, args.gzip)
    print(f"\nbucketbridge: user {imported['user_s']:.2f} s + sys {imported['sys_s']:.2f} s, "
          f"RSS before the scan {imported['rss_before_mib']:.1f} MiB; moto's server used "
          f"{imported['moto_server_cpu_s']:.2f} CPU s serving it (not counted above)")
    for m in measures[1:]:
        print(f"CPU s bucketbridge / {m.tool}: {measures[0].cpu_s / m.cpu_s:.1f}x "
              f"(wall {measures[0].wall_s / m.wall_s:.1f}x)")
    for r in resumes:
        way = "from its seek point" if r["seek_point"] else "from the start (no point)"
        print(f"resume at {r['fraction']:.0%} {way}: {r['cpu_s']:.2f} CPU s to its first "
              f"checkpoint ({r['rows']:,} rows), {r['of_full']:.1%} of the whole import's CPU")
    if args.profile:
        print(f"profile written to {args.profile} (python -m pstats {args.profile})")
    if problems:
        print("verification: FAILED\n" + "\n".join(f"  {p}" for p in problems))
    else:
        print(f"verification: OK, revisions 1..{imported['revisions']}, {generated.rows:,} "
              "lines, first and last lines match")
    if args.json:
        report = {"rows": args.rows, "gzip": args.gzip, "csv_bytes": generated.csv_bytes,
                  "file_bytes": generated.file_bytes,
                  "measures": [{**asdict(m), "rows_per_s": m.rows_per_s} for m in measures],
                  "bucketbridge": imported, "duckdb": duck, "resumes": resumes,
                  "problems": problems}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
