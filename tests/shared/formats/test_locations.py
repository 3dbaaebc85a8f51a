"""The isolation rules between locations, and safe export prefixes: pure, no server."""

from __future__ import annotations

import pytest

from shared.errors import IsolationError, UserError
from shared.formats.importkeys import FilePattern
from shared.formats.locations import (
    ExportLocation,
    ImportLocation,
    refuse_store_bucket,
    validate_export_prefix,
)
from shared.formats.printable import printable


def imp(base: str, bucket: str = "b") -> ImportLocation:
    return ImportLocation.of(bucket, FilePattern.from_base_filename(base))


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ("acc.csv", "accounts.csv", True),  # accounts-2.csv matches both
    ("accounts.csv", "acc.csv", True),
    ("accounts.csv", "accounts.csv", True),
    ("accounts.csv", "accounts.csv.gz", True),  # accounts-1.csv.gz matches both
    ("acc.csv.gz", "accounts.csv", True),
    ("ACCOUNTS.CSV", "accounts-x.csv", False),  # keys are case-sensitive: no common key
    ("Acc.CSV", "Acc.csv", True),  # extensions compared without case
    ("accounts.csv", "bills.csv", False),
    ("accounts.csv", "in/accounts.csv", False),  # another folder
    ("in/acc.csv", "in/accounts.csv", True),
    ("in/acc.csv", "in/sub/accounts.csv", False),
])
def test_import_locations_overlap_when_one_key_could_match_both(a: str, b: str,
                                                                overlap: bool) -> None:
    assert imp(a).overlaps(imp(b)) is overlap
    assert imp(b).overlaps(imp(a)) is overlap


def test_import_locations_in_two_buckets_never_overlap() -> None:
    assert not imp("accounts.csv", "one").overlaps(imp("accounts.csv", "two"))


def test_overlap_is_exact_for_every_key_of_a_sample() -> None:
    # The rule agrees with the patterns themselves on a sample of keys
    bases = ["a.csv", "acc.csv", "accounts.csv", "accounts.csv.gz", "in/acc.csv", "b.csv.gz"]
    keys = ["a.csv", "acc.csv", "accounts-1.csv", "accounts-1.csv.gz", "b1.csv.gz",
            "in/acc-1.csv", "in/accounts.csv", "abc.csv", "accounts.txt"]
    for x in bases:
        for y in bases:
            both = [k for k in keys if imp(x).pattern.matches(k) and imp(y).pattern.matches(k)]
            if both:
                assert imp(x).overlaps(imp(y)), (x, y, both)


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ("", "", True),
    ("", "km/", True),
    ("km/", "km/", True),
    ("km/", "km/acme/", True),
    ("km/", "kmx/", False),
    ("a/", "b/", False),
])
def test_export_locations_overlap_when_one_prefix_holds_the_other(a: str, b: str,
                                                                  overlap: bool) -> None:
    assert ExportLocation("b", a).overlaps(ExportLocation("b", b)) is overlap
    assert ExportLocation("b", b).overlaps(ExportLocation("b", a)) is overlap
    assert not ExportLocation("b", a).overlaps(ExportLocation("c", b))


@pytest.mark.parametrize(("base", "prefix", "clash"), [
    ("index.csv", "", True),  # it would import (and move) the export's index.csv
    ("ind.csv", "", True),
    ("status.csv", "", True),
    ("km/index.csv", "km/", True),
    ("index.csv", "km/", False),
    ("accounts.csv", "", False),
    ("index.csv.gz", "", False),
])
def test_an_import_clashes_with_an_export_whose_files_it_matches(base: str, prefix: str,
                                                                 clash: bool) -> None:
    assert imp(base).clashes_with(ExportLocation("b", prefix)) is clash
    assert not imp(base, "other").clashes_with(ExportLocation("b", prefix))


@pytest.mark.parametrize(("prefix", "normal"), [
    ("", ""), ("km", "km/"), ("km/", "km/"), ("a/b", "a/b/"), ("données/été", "données/été/"),
])
def test_export_prefixes_are_normalised(prefix: str, normal: str) -> None:
    assert validate_export_prefix(prefix) == normal


@pytest.mark.parametrize(("prefix", "message"), [
    ("../other/", "has an empty, '.' or '..' segment"),
    ("a/../b", "has an empty, '.' or '..' segment"),
    ("a/./b", "has an empty, '.' or '..' segment"),
    ("a//b", "has an empty, '.' or '..' segment"),
    ("..", "has an empty, '.' or '..' segment"),
    ("/abs", "may not start with /"),
    ("km\n", "holds control characters"),
    ("km\x1b]0;pwned\x07/", "holds control characters"),
    ("a\u202e/", "holds control characters"),
    ("x" * 513, "longer than 512 bytes"),
    ("é" * 257, "longer than 512 bytes"),
    (" km", "has spaces around it"),
    ("completed_imports/x/", "inside a folder where imported files go"),
])
def test_unsafe_export_prefixes_are_refused_in_one_line(prefix: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        validate_export_prefix(prefix)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)


def test_the_store_bucket_is_nobodys_bucket() -> None:
    refuse_store_bucket("customer", "store", "import bucket")
    with pytest.raises(IsolationError, match="import bucket store is bucketbridge's store"):
        refuse_store_bucket("store", "store", "import bucket")


@pytest.mark.parametrize(("text", "shown"), [
    ("accounts\x1b]0;pwned\x07.csv", "accounts\\x1b]0;pwned\\x07.csv"),
    ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
    ("\x9b31m", "\\x9b31m"),
    ("x\u202ecod.csv", "x\\u202ecod.csv"),
    ("données 数据 😀", "données 数据 😀"),
])
def test_printable_escapes_control_characters_only(text: str, shown: str) -> None:
    assert printable(text) == shown
