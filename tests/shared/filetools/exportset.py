"""Generated export sets for the ``files`` tests: revision files, index.csv, and fingerprints
of every input so a test can prove that nothing it read was changed."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from shared.formats.exportfiles import INDEX_HEADER
from shared.formats.times import iso_utc
from shared.store.s3 import S3

DAY_S = 86_400
JAN_31_S = 1_706_659_200  # 2024-01-31T00:00:00Z

Line = dict[str, Any]


def ndjson(lines: Iterable[Line]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def read_ndjson(data: bytes) -> list[Line]:
    return [orjson.loads(raw) for raw in data.splitlines()]


def revision_lines(number: int, count: int = 2, start_s: int = JAN_31_S) -> list[Line]:
    """``count`` events whose identity and props name their revision and position."""
    return [{"_p": f"user-{number}-{i}", "_t": start_s + number * 60 + i, "_n": "Viewed Page",
             "Revision": number, "Position": i} for i in range(count)]


def write_revisions(folder: Path, revisions: Mapping[int, bytes],
                    gzipped: Iterable[int] = ()) -> dict[int, Path]:
    """``<n>.json`` (or ``<n>.json.gz`` for the numbers in ``gzipped``) under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    zipped = set(gzipped)
    paths = {}
    for number, body in revisions.items():
        if number in zipped:
            path = folder / f"{number}.json.gz"
            path.write_bytes(gzip.compress(body, mtime=0))
        else:
            path = folder / f"{number}.json"
            path.write_bytes(body)
        paths[number] = path
    return paths


def index_csv(revisions: Mapping[int, list[Line]]) -> bytes:
    rows = [",".join(INDEX_HEADER)]
    for number in sorted(revisions):
        times = [line["_t"] for line in revisions[number] if "_t" in line]
        lo, hi = (min(times), max(times)) if times else (None, None)
        rows.append(",".join((f"revisions/{number}.json", "" if lo is None else str(lo),
                              "" if hi is None else str(hi), "" if lo is None else iso_utc(lo),
                              "" if hi is None else iso_utc(hi))))
    return ("\n".join(rows) + "\n").encode()


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` by relative path (their modes too)."""
    return {str(p.relative_to(root)): f"{hashlib.sha256(p.read_bytes()).hexdigest()} "
            f"{p.stat().st_mode:o}" for p in sorted(root.rglob("*")) if p.is_file()}


def bucket_digest(s3: S3, bucket: str) -> dict[str, str]:
    return {info.key: hashlib.sha256(s3.read_bytes(bucket, info.key)).hexdigest()
            for info in s3.list(bucket)}
