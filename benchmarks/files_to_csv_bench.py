"""``bucketbridge files to-csv`` benchmark: a large export through the real command.

Generates an export of ``--lines`` NDJSON lines split over ``--files`` revision files
(``revisions/<n>.json``, optionally gzipped) in a temporary directory, then runs
``python -m producers files to-csv DIR -o out.csv`` as a fresh child process and measures that
process alone: wall seconds, CPU seconds (user + sys) and peak RSS from ``wait4``'s resource
usage.  The same for ``files --help`` gives the interpreter-and-imports baseline.  Finally the
output is verified: one header and one row per line, the columns, the first and last rows
against the generated lines (computed independently of the product), and that no cell a
spreadsheet would run as a formula was left unneutralised.

    python benchmarks/files_to_csv_bench.py [--lines N] [--files N] [--gzip] [--keep]
                                            [--json PATH]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SEED = 20_240_131
START_T = 1_704_067_200  # 2024-01-01T00:00:00Z
BATCH_LINES = 10_000

_EVENTS = ("Viewed Page", "Viewed Page", "Viewed Page", "Logged In", "Signed Up",
           "Added to Cart", "Purchased", "Upgraded Plan", None)  # None: a property set
_PLANS = ("Free", "Starter", "Pro", "Business, annual", "Enterprise (EU, 3 yr)")
_COMPANIES = ("Acme, Inc.", 'Widgets "R" Us, LLC', "Globex", "Müller & Söhne GmbH",
              "株式会社サンプル", "O'Reilly Media", "=HYPERLINK(\"http://x\",\"y\")", "-", "")
_CITIES = ("São Paulo", "Zürich", "東京", "Kraków", "Москва", "New York, NY", "+London", "")
_FIRST = ("anna", "bob", "chen", "dmitri", "elif", "fatima", "george", "hana", "ivan", "jose")
_DOMAINS = ("example.com", "mail.example.org", "corp.example.net")
_FORMULA = re.compile(r"[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")


def make_line(rng: random.Random, people: list[str], t: int) -> dict[str, Any]:
    """One realistic export line: an event, a property set, or (2 %) an alias."""
    who = rng.choice(people)
    if rng.random() < 0.02:
        return {"_p": who, "_p2": f"{who.split('@')[0]}@alias.example.com", "_t": t}
    line: dict[str, Any] = {"_p": who, "_t": t}
    event = rng.choice(_EVENTS)
    if event is not None:
        line["_n"] = event
    line["Plan"] = rng.choice(_PLANS)
    if rng.random() < 0.5:
        line["Amount"] = round(rng.uniform(-50, 999), 2)
    if rng.random() < 0.7:
        line["Company"] = rng.choice(_COMPANIES)
    if rng.random() < 0.6:
        line["City"] = rng.choice(_CITIES)
    if rng.random() < 0.3:
        line["Page"] = f"/products/{rng.randint(1, 5000)}?ref=mail"
    if rng.random() < 0.05:
        line["Trial"] = rng.random() < 0.5
    return line


@dataclass(frozen=True)
class Generated:
    root: Path
    lines: int
    files: int
    stored_bytes: int
    ndjson_bytes: int
    first: dict[str, Any]
    last: dict[str, Any]


def generate(root: Path, lines: int, files: int, gzipped: bool) -> Generated:
    """Write the export batch by batch (never the whole of it in memory)."""
    import orjson

    rng = random.Random(SEED)
    people = [f"{rng.choice(_FIRST)}.{n}@{rng.choice(_DOMAINS)}" if n % 4 else f"u_{n:07d}"
              for n in range(50_000)]
    folder = root / "revisions"
    folder.mkdir(parents=True)
    per_file = -(-lines // files)
    t = START_T
    written = ndjson_bytes = 0
    first: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for number in range(1, files + 1):
        count = min(per_file, lines - written)
        path = folder / (f"{number}.json.gz" if gzipped else f"{number}.json")
        with path.open("wb") as raw:
            out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) \
                if gzipped else raw
            for start in range(0, count, BATCH_LINES):
                batch = []
                for _ in range(min(BATCH_LINES, count - start)):
                    t += rng.choice((0, 1, 1, 2))
                    line = make_line(rng, people, t)
                    first = first or line
                    last = line
                    batch.append(orjson.dumps(line))
                data = b"\n".join(batch) + b"\n"
                out.write(data)
                ndjson_bytes += len(data)
            if gzipped:
                out.close()
        written += count
    stored = sum(p.stat().st_size for p in folder.iterdir())
    return Generated(root=root, lines=lines, files=files, stored_bytes=stored,
                     ndjson_bytes=ndjson_bytes, first=first, last=last)


@dataclass
class Measured:
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mib: float
    returncode: int
    stderr: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def run_measured(args: list[str]) -> Measured:
    """Run ``python -m producers ARGS`` in a fresh process; its own time and peak memory."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "producers", *args], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode("utf-8", "replace")
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall_s = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    return Measured(wall_s=wall_s, user_s=usage.ru_utime, sys_s=usage.ru_stime,
                    peak_rss_mib=usage.ru_maxrss / 1024, returncode=proc.returncode,
                    stderr=stderr)


def expected_row(line: dict[str, Any], header: list[str]) -> list[str]:
    """The CSV row a line must become (written independently of the product)."""
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            risky = value[:1] and _FORMULA.match(value[:1]) and not _PLAIN_NUMBER.match(value)
            return "'" + value if risky else value
        return json.dumps(value)

    return [cell(line.get(name)) for name in header]


def verify(out: Path, generated: Generated) -> tuple[int, list[str]]:
    """The number of data rows, and what is wrong with the file (nothing: an empty list)."""
    problems = []
    rows = 0
    first: list[str] = []
    last: list[str] = []
    unneutralised = 0
    with out.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        for row in reader:
            rows += 1
            if rows == 1:
                first = row
            last = row
            for value in row:
                if value[:1] in ("=", "+", "-", "@", "\t", "\r") and \
                        not _PLAIN_NUMBER.match(value):
                    unneutralised += 1
    if header[:4] != ["_p", "_p2", "_t", "_n"]:
        problems.append(f"header starts {header[:4]}")
    if rows != generated.lines:
        problems.append(f"{rows} rows, expected {generated.lines}")
    for what, got, line in (("first", first, generated.first), ("last", last, generated.last)):
        if got != expected_row(line, header):
            problems.append(f"{what} row {got} != {expected_row(line, header)}")
    if unneutralised:
        problems.append(f"{unneutralised} cells would run as formulas")
    return rows, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines (1,000,000)")
    parser.add_argument("--files", type=int, default=10, help="revision files (10)")
    parser.add_argument("--gzip", action="store_true", help="write <n>.json.gz files")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.lines < 1 or args.files < 1:
        parser.error("--lines and --files must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="bucketbridge-files-bench-"))
    try:
        started = time.perf_counter()
        # In a child of its own: a forked child's peak RSS counts its parent's pages until it
        # execs, so the parent must stay small for the figures below to be the command's own.
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            generated = pool.submit(generate, workdir / "export", args.lines, args.files,
                                    args.gzip).result()
        print(f"generated {generated.lines:,} lines in {generated.files} files "
              f"({generated.stored_bytes / 2**20:.1f} MiB stored, "
              f"{generated.ndjson_bytes / 2**20:.1f} MiB NDJSON) in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
        baseline = run_measured(["files", "--help"])
        out = workdir / "out.csv"
        measured = run_measured(["files", "to-csv", str(generated.root), "-o", str(out)])
        if measured.returncode != 0:
            print(f"to-csv failed ({measured.returncode}): {measured.stderr}", file=sys.stderr)
            return 1
        rows, problems = verify(out, generated)
        if measured.stderr:
            problems.append(f"stderr was not empty: {measured.stderr[:200]!r}")
        out_bytes = out.stat().st_size
        parent_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    kind = "gzip" if args.gzip else "plain"
    print(f"\nfiles to-csv: {generated.lines:,} lines in {generated.files} {kind} revision "
          f"files, {generated.ndjson_bytes / 2**20:.1f} MiB NDJSON -> "
          f"{out_bytes / 2**20:.1f} MiB CSV, {rows:,} rows\n")
    print(f"  wall          {measured.wall_s:8.2f} s")
    print(f"  lines/s       {generated.lines / measured.wall_s:11,.0f}")
    print(f"  CPU           {measured.cpu_s:8.2f} s  (user {measured.user_s:.2f} + sys "
          f"{measured.sys_s:.2f}); {generated.lines / measured.cpu_s:,.0f} lines per CPU s")
    print(f"  peak RSS      {measured.peak_rss_mib:8.1f} MiB  (interpreter and imports alone: "
          f"{baseline.peak_rss_mib:.1f} MiB, {baseline.cpu_s:.2f} CPU s; this benchmark's own "
          f"process, a floor for both: {parent_rss_mib:.1f} MiB)")
    if problems:
        print("verification: FAILED\n" + "\n".join(f"  {p}" for p in problems))
    else:
        print(f"verification: OK, header and {rows:,} rows, first and last rows as expected, "
              "no cell left that a spreadsheet would run")
    if args.json:
        report = {"lines": generated.lines, "files": generated.files, "gzip": args.gzip,
                  "ndjson_bytes": generated.ndjson_bytes, "csv_bytes": out_bytes,
                  "rows": rows, "lines_per_s": generated.lines / measured.wall_s,
                  "to_csv": {**asdict(measured), "cpu_s": measured.cpu_s},
                  "baseline": {**asdict(baseline), "cpu_s": baseline.cpu_s},
                  "problems": problems}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
