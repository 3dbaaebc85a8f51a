"""A gzip file imported over several runs resumes from its saved seek point, not from its first
byte, and imports exactly what a single run imports; a missing, stale or damaged point only
costs the read from the start (real scan against moto's S3 server)."""

from __future__ import annotations

import gzip
import random
import string
from itertools import pairwise
from typing import Any

import pytest

from shared.formats import gzseek
from shared.services import Services
from shared.store.s3 import S3, ObjectStream
from shared.store.seekpoints import seek_point_key
from shared.store.sites import SiteConfig
from tests.shared.imports.test_bad_inputs import T0, imported, revision_sources, scan

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(gzseek._gzseek is None, reason="seek finder not built")]

ROWS = 60_000
CHECKS_PER_RUN = 10  # the import looks at the stop request every 2,048 records


def wide_file(prefix: str = "u") -> bytes:
    """About 9 MiB of rows with a noisy property, so that gzip's blocks are realistic."""
    rng = random.Random(7)
    notes = ["".join(rng.choices(string.ascii_letters + " ", k=120)) for _ in range(500)]
    return b"Identity,Timestamp,Event,Prop:Note\n" + b"".join(
        f"{prefix}{n},{T0 + n},E{n},{rng.choice(notes)}\n".encode() for n in range(1, ROWS + 1))


def stop_every_run_after(checks: int) -> Any:
    answers = iter([False] * (checks + 1))
    return lambda: next(answers, True)


class OpenSpy:
    """The S3 adapter, noting the start byte of every read of an import file."""

    def __init__(self, s3: S3, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self.starts: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def open(self, bucket: str, key: str, **kwargs: Any) -> ObjectStream:
        if bucket == self._bucket:
            self.starts.append(kwargs.get("start_byte", 0))
        return self._s3.open(bucket, key, **kwargs)


def expected(body: bytes) -> list[dict[str, object]]:
    out = []
    for text in body.decode().splitlines()[1:]:
        identity, t, event, note = text.split(",")
        out.append({"_p": identity, "_t": int(t), "_n": event, "Note": note})
    return out


def import_in_runs(s3: S3, services: Services, site: SiteConfig,
                   before_run: Any = None) -> list[list[int]]:
    """Scan until the file is done, each scan stopping at its first checkpoint; the start
    bytes each run read the file from."""
    starts = []
    for _ in range(20):
        if before_run is not None:
            before_run()
        spy = OpenSpy(s3, site.import_bucket)
        result = scan(services, spy, site,  # type: ignore[arg-type]
                      should_stop=stop_every_run_after(CHECKS_PER_RUN))
        starts.append(spy.starts)
        if result.files_completed:
            return starts
    raise AssertionError("the file did not complete")


def test_a_gzip_file_resumes_from_its_seek_point_and_imports_exactly_once(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a gzip file of 60,000 rows (9 MiB), imported about 20,000 rows per run
    body = wide_file()
    s3.put(site.import_bucket, "accounts-1.csv.gz", gzip.compress(body))
    # When it is scanned run after run
    starts = import_in_runs(s3, services, site)
    # Then every row landed once, in order, exactly as the file says
    assert imported(s3, services) == expected(body)
    sources = revision_sources(s3, services)
    # (the reader also asks for the stop every MiB, so a run's length in records varies)
    ranges = [(s[1], s[2]) for s in sources]
    assert len(ranges) >= 3 and ranges[0][0] == 1 and ranges[-1][1] == ROWS
    assert all(later[0] == earlier[1] + 1 for earlier, later in pairwise(ranges))
    # And each run after the first read the header from byte 0, then the stored bytes from a
    # seek point past the start, never the whole file again
    assert starts[0] == [0]
    for later in starts[1:]:
        assert later[0] == 0 and len(later) == 2 and later[1] > 0, starts
    # And the point kept in the store bucket is small
    point = s3.read_bytes(services.settings.store_bucket, seek_point_key("acme"))
    assert len(point) < 20_000


@pytest.mark.parametrize("damage", ["missing", "garbage", "other-file"])
def test_a_seek_point_that_does_not_hold_means_reading_from_the_start(
        s3: S3, services: Services, site: SiteConfig, damage: str) -> None:
    store = services.settings.store_bucket
    body = wide_file()
    s3.put(site.import_bucket, "accounts-1.csv.gz", gzip.compress(body))
    other = gzip.compress(wide_file(prefix="x"))

    def spoil() -> None:
        if damage == "missing":
            s3.delete(store, seek_point_key("acme"))
        elif damage == "garbage":
            s3.put(store, seek_point_key("acme"), b"bucketbridge-gzip-seek-point-1\n{}\nxx")
        else:  # a valid point of another file
            finder = gzseek.PointFinder("accounts-1.csv.gz", "\"other\"")
            finder.feed(other)
            point = finder.point_at(len(body) // 2)
            assert point is not None
            s3.put(store, seek_point_key("acme"), gzseek.encode(point))

    starts = import_in_runs(s3, services, site, before_run=spoil)
    assert imported(s3, services) == expected(body)
    assert all(later == [0] for later in starts), starts
