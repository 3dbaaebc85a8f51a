"""Which keys belong to a site's import, where finished files go, and the order files come in."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import orjson
import pytest

from shared.clock import FrozenClock
from shared.errors import UserError
from shared.formats.importkeys import (
    FilePattern,
    basename,
    completed_key,
    failed_key,
    failure_report_key,
    is_gzip_key,
    row_report_key,
)
from shared.imports.scan import Importer, matching_files
from shared.services import Services
from shared.store.revisionwriter import Limits
from shared.store.s3 import S3
from shared.store.sites import SiteConfig

pytestmark = pytest.mark.timeout(60)


def unix_s(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
           second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


# -- matching ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    "accounts.csv",
    "accounts-2024-01.csv",
    "accounts.2024.csv",
    "accountsX.csv",
    "accounts-1.csv.gz",
    "accounts.csv.gz",
    "accounts-2.CSV",
    "accounts-3.csv.GZ",
    "accounts-4.Csv.Gz",
])
def test_csv_base_name_matches_its_family(key: str) -> None:
    # Given the base name accounts.csv
    pattern = FilePattern.from_base_filename("accounts.csv")
    # When / Then the key is one of its import files
    assert pattern.matches(key) is True


@pytest.mark.parametrize("key", [
    "other.csv",
    "accounts.csv.bak",
    "Accounts.csv",
    "ACCOUNTS.csv",
    "sub/accounts-1.csv",
    "completed_imports/2024/01/01/accounts.csv",
    "failed_imports/2024/01/01/accounts.csv",
    "failed_imports/2024/01/01/accounts.csv.error.txt",
    "completed_imports/2024/01/01/accounts.csv.errors.csv",
    "accounts.txt",
    "accounts",
    "accounts.gz",
    "accounts.GZ",
    "accounts.CSV.bak",
    "account.csv",
    "",
])
def test_csv_base_name_does_not_match_others(key: str) -> None:
    # Given the base name accounts.csv
    pattern = FilePattern.from_base_filename("accounts.csv")
    # When / Then the key is not an import file of the site
    assert pattern.matches(key) is False


def test_csv_gz_base_name_matches_only_gzip_files() -> None:
    # Given a gzip base name
    pattern = FilePattern.from_base_filename("accounts.csv.gz")
    # Then only .csv.gz files of the family match
    assert pattern.extensions == (".csv.gz",)
    assert pattern.matches("accounts.csv.gz")
    assert pattern.matches("accounts-2024-01.csv.gz")
    assert not pattern.matches("accounts.csv")
    assert not pattern.matches("accounts-2024-01.csv")
    assert not pattern.matches("accounts.gz")


def test_base_name_in_a_folder_matches_only_directly_in_that_folder() -> None:
    # Given a base name inside a folder
    pattern = FilePattern.from_base_filename("incoming/accounts.csv")
    # Then its list prefix is the folder plus the stem
    assert pattern.folder == "incoming/"
    assert pattern.stem == "accounts"
    assert pattern.list_prefix == "incoming/accounts"
    # And only files directly inside the folder match
    assert pattern.matches("incoming/accounts.csv")
    assert pattern.matches("incoming/accounts-1.csv")
    assert pattern.matches("incoming/accounts-1.csv.gz")
    assert not pattern.matches("incoming/x/accounts-1.csv")
    assert not pattern.matches("incoming/accounts/x.csv")
    assert not pattern.matches("accounts-1.csv")
    assert not pattern.matches("accounts.csv")
    assert not pattern.matches("other/accounts-1.csv")


def test_surrounding_spaces_of_a_base_name_are_ignored() -> None:
    assert FilePattern.from_base_filename("  accounts.csv ") == \
        FilePattern.from_base_filename("accounts.csv")


@pytest.mark.parametrize(("base", "message"), [
    ("accounts", "must end in .csv or .csv.gz"),
    ("accounts.txt", "must end in .csv or .csv.gz"),
    (".csv", "has no name before its extension"),
    (".csv.gz", "has no name before its extension"),
    ("dir/.csv", "has no name before its extension"),
    ("/x.csv", "must name a file"),
    ("dir/", "must name a file"),
    ("", "must name a file"),
    ("   ", "must name a file"),
    ("completed_imports/accounts.csv", "inside a folder bucketbridge writes to"),
    ("failed_imports/2024/accounts.csv", "inside a folder bucketbridge writes to"),
])
def test_bad_base_names_are_usage_errors(base: str, message: str) -> None:
    # When a site names an unusable base filename
    with pytest.raises(UserError) as raised:
        FilePattern.from_base_filename(base)
    # Then the error says what is wrong with it
    assert message in str(raised.value)
    assert repr(base) in str(raised.value)


# -- where files go ------------------------------------------------------------------------------


def test_completed_and_failed_keys_use_the_utc_day() -> None:
    # Given an instant one second before midnight UTC, and one exactly at midnight
    before = unix_s(2024, 1, 31, 23, 59, 59)
    at = unix_s(2024, 2, 1)
    # Then the destination is the UTC day of that instant, with the file's own name
    assert completed_key("accounts.csv", before) == "completed_imports/2024/01/31/accounts.csv"
    assert completed_key("accounts.csv", at) == "completed_imports/2024/02/01/accounts.csv"
    assert failed_key("accounts-1.csv.gz", before) == "failed_imports/2024/01/31/accounts-1.csv.gz"
    assert failed_key("accounts-1.csv.gz", at) == "failed_imports/2024/02/01/accounts-1.csv.gz"
    # And fractional seconds do not round into the next day
    assert completed_key("accounts.csv", at - 0.001) == \
        "completed_imports/2024/01/31/accounts.csv"


def test_destination_drops_the_source_folder_and_pads_month_and_day() -> None:
    when = unix_s(2025, 3, 4, 12)
    assert completed_key("incoming/accounts-1.csv", when) == \
        "completed_imports/2025/03/04/accounts-1.csv"
    assert failed_key("a/b/accounts.csv", when) == "failed_imports/2025/03/04/accounts.csv"


def test_year_end_in_utc_not_local_time() -> None:
    # 2023-12-31T23:30:00Z is already 2024 in most of Asia; the key must still say 2023
    assert completed_key("accounts.csv", unix_s(2023, 12, 31, 23, 30)) == \
        "completed_imports/2023/12/31/accounts.csv"


def test_report_keys_sit_beside_the_moved_file() -> None:
    dest = "completed_imports/2024/01/31/accounts.csv"
    assert row_report_key(dest) == "completed_imports/2024/01/31/accounts.csv.errors.csv"
    assert failure_report_key("failed_imports/2024/01/31/accounts.csv") == \
        "failed_imports/2024/01/31/accounts.csv.error.txt"


def test_gzip_and_basename_helpers() -> None:
    assert is_gzip_key("accounts-1.csv.gz")
    assert is_gzip_key("accounts-1.CSV.GZ")
    assert not is_gzip_key("accounts-1.csv")
    assert basename("a/b/accounts.csv") == "accounts.csv"
    assert basename("accounts.csv") == "accounts.csv"


# -- order, through a real bucket ------------------------------------------------------------------

# UTF-8 byte order of these keys.  "-" (0x2d) sorts before "." (0x2e); upper case before lower
# case; "é" (c3 a9) after ASCII; U+FF21 (ef bc a1) before U+1F600 (f0 9f 98 80), which UTF-16
# order would reverse.
BYTE_ORDER = [
    "accounts-10.csv",
    "accounts-9.csv",
    "accounts-B.csv",
    "accounts-a.csv",
    "accounts-a.csv.gz",
    "accounts-é.csv",
    "accounts-\uff21.csv",
    "accounts-\U0001f600.csv",
    "accounts.csv",
]


def test_matching_files_come_in_utf8_byte_order(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given the site's files uploaded in a scrambled order, plus keys that do not match
    assert sorted(BYTE_ORDER, key=lambda k: k.encode("utf-8")) == BYTE_ORDER
    scrambled = [BYTE_ORDER[i] for i in (5, 0, 8, 3, 7, 1, 6, 2, 4)]
    for key in scrambled:
        s3.put(site.import_bucket, key, b"Identity,Timestamp,Event\n")
    s3.put(site.import_bucket, "other.csv", b"x")
    s3.put(site.import_bucket, "sub/accounts-0.csv", b"x")
    s3.put(site.import_bucket, "completed_imports/2024/01/01/accounts-0.csv", b"x")
    # When the site's files are listed
    found = matching_files(s3, site)
    # Then exactly the matching files come, in byte order of their UTF-8 keys
    assert [f.key for f in found] == BYTE_ORDER


def test_scan_imports_files_in_utf8_byte_order(
        s3: S3, services: Services, site: SiteConfig) -> None:
    # Given one single-row file per key, each row naming its file, uploaded scrambled
    for n, key in enumerate(reversed(BYTE_ORDER)):
        gzipped = key.endswith(".gz")
        body = f"Identity,Timestamp,Event\n{key},{1_700_000_000 + n},E\n".encode()
        if gzipped:
            body = gzip.compress(body)
        s3.put(site.import_bucket, key, body)
    importer = Importer(services.store, services.reports, services.tail_cache,
                        FrozenClock(), services.metrics,
                        Limits())
    # When the site is scanned
    result = importer.scan(site, s3, budget_s=30)
    # Then revision n holds the n-th file in byte order
    assert result.outcome == "done"
    assert result.files_completed == BYTE_ORDER
    identities = []
    for info in services.store.objects("acme"):
        lines = s3.read_bytes(services.settings.store_bucket, info.key).splitlines()
        identities.extend(orjson.loads(line)["_p"] for line in lines)
    assert identities == BYTE_ORDER
