"""Finding and opening revision files: numeric order (never listing or glob order), gzip by its
magic bytes, resuming inside plain and gzip files, local directories and S3 prefixes."""

from __future__ import annotations

import gzip
import hashlib
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.errors import BucketMissing, UserError
from shared.filetools.sources import (
    Input,
    LocalLocation,
    Part,
    S3Location,
    order_revisions,
    parse_s3_url,
    resolve_input,
    revision_number_of,
)
from shared.formats.exportlines import Problems
from shared.store.s3 import S3
from tests.shared.filetools.exportset import ndjson, revision_lines, write_revisions

pytestmark = pytest.mark.timeout(120)


def no_s3() -> S3:
    raise AssertionError("a local input must not build an S3 client")


@pytest.mark.parametrize(("name", "number"), [
    ("9.json", 9), ("revisions/10.json", 10), ("10.json.gz", 10), ("007.json", 7),
    ("index.csv", None), ("10.json.bak", None), ("x10.json", None), ("10.JSON", None),
    ("10.ndjson", None), (".json", None),
])
def test_revision_numbers_come_from_names(name: str, number: int | None) -> None:
    assert revision_number_of(name) == number


def test_three_hundred_revisions_come_in_numeric_order_whatever_the_listing_order() -> None:
    # Given 300 revision files listed in a shuffled order, among files that are not revisions
    parts = [Part(f"{n}.json", 1) for n in range(1, 301)]
    others = [Part("index.csv", 1), Part("status.csv", 1), Part("notes.json", 1),
              Part("old/3.json", 1)]
    listed = parts + others
    random.Random(5).shuffle(listed)
    # When they are ordered
    ordered = order_revisions(listed)
    # Then 9 comes before 10 and 99 before 100: numeric, not byte order; the others are left out
    assert [p.name for p in ordered] == [f"{n}.json" for n in range(1, 301)]


def test_files_at_the_top_win_over_those_in_revisions() -> None:
    ordered = order_revisions([Part("revisions/1.json", 1), Part("2.json", 1),
                               Part("revisions/3.json", 1)])
    assert [p.name for p in ordered] == ["2.json"]
    nested = order_revisions([Part("revisions/2.json", 1), Part("revisions/10.json.gz", 1)])
    assert [p.name for p in nested] == ["revisions/2.json", "revisions/10.json.gz"]


@pytest.mark.parametrize("names", [("7.json", "7.json.gz"), ("7.json", "007.json")])
def test_two_files_for_one_number_are_refused_not_guessed(names: tuple[str, str]) -> None:
    with pytest.raises(UserError, match=f"revision 7 is there twice: {names[0]} and "
                                         f"{names[1]}"):
        order_revisions([Part(names[0], 1), Part(names[1], 1)])


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "s3://Bad_Bucket/x", "s3:/b/x",
                                 "https://b/x"])
def test_malformed_s3_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UserError, match="S3 URL"):
        parse_s3_url(url)


def test_s3_urls_split_into_bucket_and_key() -> None:
    assert parse_s3_url("s3://my-bucket/exports/acme/") == ("my-bucket", "exports/acme/")
    assert parse_s3_url("s3://my-bucket") == ("my-bucket", "")


def test_a_directory_without_revision_files_and_a_missing_path_are_usage_errors(
        tmp_path: Path) -> None:
    (tmp_path / "index.csv").write_text("x")
    with pytest.raises(UserError, match=r"no revision files \(<n>.json or <n>.json.gz\) in"):
        resolve_input(str(tmp_path), no_s3)
    with pytest.raises(UserError, match="no such file or directory: "):
        resolve_input(str(tmp_path / "missing"), no_s3)


def test_an_export_root_means_its_revisions_folder(tmp_path: Path) -> None:
    write_revisions(tmp_path / "revisions", {n: ndjson(revision_lines(n)) for n in (2, 11, 1)})
    (tmp_path / "index.csv").write_text("x")
    inp = resolve_input(str(tmp_path), no_s3)
    assert [p.name for p in inp.parts] == ["revisions/1.json", "revisions/2.json",
                                           "revisions/11.json"]
    assert inp.local_paths() == [tmp_path / "revisions" / f"{n}.json" for n in (1, 2, 11)]


def test_gzip_is_recognised_by_its_bytes_not_its_name(tmp_path: Path) -> None:
    # Given gzip content named .json and plain content named .json.gz
    body = ndjson(revision_lines(1))
    (tmp_path / "1.json").write_bytes(gzip.compress(body))
    (tmp_path / "2.json.gz").write_bytes(body)
    inp = resolve_input(str(tmp_path), no_s3)
    # When both are read
    problems = Problems(strict=True)
    texts = [text + b"\n" for text, _ in inp.lines(problems)]
    # Then both give their lines
    assert b"".join(texts) == body + body


@pytest.mark.parametrize("zipped", [False, True])
def test_opening_past_the_start_gives_the_rest_of_the_decompressed_bytes(
        tmp_path: Path, zipped: bool) -> None:
    body = ndjson(revision_lines(1, count=500))
    write_revisions(tmp_path, {1: body}, gzipped=[1] if zipped else [])
    inp = resolve_input(str(tmp_path), no_s3)
    with inp.open(inp.parts[0], start_byte=1234, gzipped=zipped) as opened:
        assert opened.file.read() == body[1234:]


def test_the_tap_sees_every_decompressed_byte_and_counting_sees_stored_bytes(
        tmp_path: Path) -> None:
    body = ndjson(revision_lines(1, count=3000))
    paths = write_revisions(tmp_path, {1: body}, gzipped=[1])
    inp = resolve_input(str(paths[1]), no_s3)
    digest = hashlib.sha256()
    counted: list[int] = []
    with inp.open(inp.parts[0], tap=digest.update, on_bytes=counted.append) as opened:
        while opened.file.read(1000):
            pass
    assert digest.hexdigest() == hashlib.sha256(body).hexdigest()
    assert sum(counted) == paths[1].stat().st_size < len(body)


@pytest.mark.slow(10)
def test_a_prefix_of_over_a_thousand_objects_is_read_in_numeric_order(
        s3: S3, export_bucket: str) -> None:
    # Given 1005 revision objects under a prefix (more than one listing page) and an index
    count = 1005
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: s3.put(export_bucket, f"km/revisions/{n}.json",
                                       ndjson(revision_lines(n, count=1))),
                      range(1, count + 1)))
    s3.put(export_bucket, "km/index.csv", b"x")
    s3.put(export_bucket, "km/revisions/deeper/4.json", b"x")
    # When the prefix is resolved and read
    inp = resolve_input(f"s3://{export_bucket}/km", lambda: s3)
    numbers = [line["Revision"] for _text, line in inp.lines(Problems(strict=True))]
    # Then every revision is read once, in numeric order
    assert numbers == list(range(1, count + 1))
    assert inp.describe(inp.parts[9]) == f"s3://{export_bucket}/km/revisions/10.json"


def test_an_s3_url_naming_an_object_is_that_one_file(s3: S3, export_bucket: str) -> None:
    s3.put(export_bucket, "km/revisions/3.json", ndjson(revision_lines(3)))
    s3.put(export_bucket, "km/revisions/4.json", ndjson(revision_lines(4)))
    inp = resolve_input(f"s3://{export_bucket}/km/revisions/3.json", lambda: s3)
    assert isinstance(inp.location, S3Location) and [p.name for p in inp.parts] == ["3.json"]
    assert [line["Revision"] for _t, line in inp.lines(Problems())] == [3, 3]
    with inp.open(inp.parts[0], start_byte=5, gzipped=False) as opened:
        assert opened.file.read() == ndjson(revision_lines(3))[5:]


def test_a_missing_bucket_is_a_permanent_error(s3: S3) -> None:
    with pytest.raises(BucketMissing):
        resolve_input("s3://no-such-bucket-here/x/", lambda: s3)


def test_local_location_describes_files_by_path(tmp_path: Path) -> None:
    location = LocalLocation(tmp_path)
    assert location.describe("revisions/3.json") == str(tmp_path / "revisions" / "3.json")
    assert Input(location, ()).total_bytes == 0
