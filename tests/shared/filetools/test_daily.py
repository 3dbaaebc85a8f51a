"""Events of given UTC days: dates and windows, overlap at the edges, index.csv reading, and
exactly the overlapping revision files fetched from S3 (every GET counted)."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest

from shared.errors import PermanentError, UserError
from shared.filetools.daily import (
    DayWindow,
    day_lines,
    day_window,
    index_of,
    overlapping,
    parse_index,
)
from shared.filetools.sources import LocalLocation, S3Location
from shared.formats.exportlines import MalformedInput, Problem, Problems
from shared.store.s3 import S3, ObjectStream
from tests.shared.filetools.exportset import (
    DAY_S,
    JAN_31_S,
    Line,
    bucket_digest,
    index_csv,
    ndjson,
    read_ndjson,
    write_revisions,
)

pytestmark = pytest.mark.timeout(60)

HEADER = (b"Filename,Minimum Timestamp,Maximum Timestamp,Minimum UTC Timestamp,"
          b"Maximum UTC Timestamp\n")


def test_one_date_is_that_utc_day() -> None:
    window = day_window("2024-01-31", None, None)
    assert (window.start_s, window.end_s) == (JAN_31_S, JAN_31_S + DAY_S)
    assert str(window) == "2024-01-31"


def test_from_and_to_are_inclusive_days() -> None:
    window = day_window(None, "2024-01-30", "2024-02-01")
    assert (window.start_s, window.end_s) == (JAN_31_S - DAY_S, JAN_31_S + 2 * DAY_S)
    assert str(window) == "2024-01-30..2024-02-01"


@pytest.mark.parametrize(("on", "first", "last", "message"), [
    ("2024-13-01", None, None, "invalid --date '2024-13-01': month must be in 1..12"),
    ("31/01/2024", None, None, "invalid --date '31/01/2024': expected a UTC date as YYYY-MM-DD"),
    ("2024-02-30", None, None, "invalid --date '2024-02-30': day is out of range for month"),
    ("2024-01-31", "2024-01-01", None, "give either --date or --from/--to, not both"),
    (None, "2024-01-01", None, "give --date DAY, or --from DAY and --to DAY"),
    (None, None, None, "give --date DAY, or --from DAY and --to DAY"),
    (None, "2024-02-01", "2024-01-31", "--from 2024-02-01 is after --to 2024-01-31"),
])
def test_bad_dates_are_usage_errors(on: str | None, first: str | None, last: str | None,
                                    message: str) -> None:
    with pytest.raises(UserError) as caught:
        day_window(on, first, last)
    assert str(caught.value) == message


@pytest.mark.parametrize(("min_t", "max_t", "overlaps"), [
    (JAN_31_S - 10, JAN_31_S, True),  # ends on the first second of the day
    (JAN_31_S - 10, JAN_31_S - 1, False),  # ends just before
    (JAN_31_S + DAY_S - 1, JAN_31_S + DAY_S + 9, True),  # starts on the last second
    (JAN_31_S + DAY_S, JAN_31_S + DAY_S + 9, False),  # starts at the next day
    (JAN_31_S - DAY_S, JAN_31_S + 2 * DAY_S, True),  # spans the day
    (None, None, False),  # no timestamps at all
])
def test_a_revision_overlaps_when_its_range_meets_the_day(
        min_t: int | None, max_t: int | None, overlaps: bool) -> None:
    window = DayWindow(date(2024, 1, 31), date(2024, 1, 31))
    assert window.overlaps(min_t, max_t) is overlaps


def test_index_rows_are_read_and_bad_rows_reported_with_their_line() -> None:
    data = (HEADER + b"revisions/2.json,100,200,x,y\n"
            b"revisions/3.json,,,,\n"
            b"../secret.json,1,2,x,y\n"
            b"revisions/4.json,1.5,2,x,y\n"
            b"\n"
            b"revisions/1.json,50,60,x,y\n")
    found: list[Problem] = []
    entries = parse_index(data, "index.csv",
                          lambda line, reason: found.append(Problem("index.csv", line, reason)))
    assert [(e.line, e.number, e.min_t, e.max_t) for e in entries] == [
        (2, 2, 100, 200), (3, 3, None, None), (7, 1, 50, 60)]
    assert [(p.line, p.reason) for p in found] == [
        (4, "Filename '../secret.json' is not revisions/<n>.json"),
        (5, "Minimum/Maximum Timestamp are not whole seconds")]
    window = DayWindow(date(1970, 1, 1), date(1970, 1, 1))
    assert [e.number for e in overlapping(entries, window)] == [1, 2]


def test_an_index_without_its_header_is_refused() -> None:
    with pytest.raises(PermanentError, match="does not start with the header Filename,"):
        parse_index(b"revisions/1.json,1,2,x,y\n", "index.csv")


def _export(day_offsets: dict[int, list[int]]) -> dict[int, list[Line]]:
    """Revision n holds events at JAN_31_S + offset (seconds) for each offset given."""
    return {n: [{"_p": f"u{n}-{i}", "_t": JAN_31_S + off, "_n": "E"}
                for i, off in enumerate(offsets)] for n, offsets in day_offsets.items()}


# Revisions 3, 4 and 10 overlap 2024-01-31; the others lie wholly before or after it.
DAYS = {1: [-3 * DAY_S, -2 * DAY_S], 2: [-DAY_S, -1], 3: [-50, 10, 20], 4: [3600],
        5: [DAY_S, DAY_S + 10], 9: [2 * DAY_S], 10: [DAY_S - 1, DAY_S + 5], 11: [-DAY_S * 9]}


class _CountingS3:
    """An S3 adapter that records every object it is asked to GET."""

    def __init__(self, s3: S3) -> None:
        self._s3 = s3
        self.opened: list[str] = []

    def open(self, bucket: str, key: str, **kwargs: object) -> ObjectStream:
        self.opened.append(key)
        return self._s3.open(bucket, key, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self._s3, name)


def test_only_the_revisions_overlapping_the_day_are_fetched_from_s3(
        s3: S3, export_bucket: str) -> None:
    # Given an export in a bucket whose revisions cover various days
    revisions = _export(DAYS)
    for n, lines in revisions.items():
        s3.put(export_bucket, f"km/revisions/{n}.json", ndjson(lines))
    s3.put(export_bucket, "km/index.csv", index_csv(revisions))
    before = bucket_digest(s3, export_bucket)
    counting = _CountingS3(s3)
    root = S3Location(counting, export_bucket, "km")  # type: ignore[arg-type]
    window = day_window("2024-01-31", None, None)
    # When the events of 2024-01-31 are extracted
    out = io.BytesIO()
    problems = Problems(strict=True)
    result = day_lines(root, overlapping(index_of(root, problems), window), window, out,
                       problems)
    # Then index.csv and exactly revisions 3, 4 and 10 were fetched, in that order
    assert counting.opened == ["km/index.csv", "km/revisions/3.json", "km/revisions/4.json",
                               "km/revisions/10.json"]
    assert result.files == ["revisions/3.json", "revisions/4.json", "revisions/10.json"]
    # And only that day's events came out, in file order
    assert read_ndjson(out.getvalue()) == [revisions[3][1], revisions[3][2], revisions[4][0],
                                           revisions[10][0]]
    assert result.lines == 4
    # And the bucket is as it was
    assert bucket_digest(s3, export_bucket) == before


def test_a_gzipped_revision_is_found_and_a_missing_one_reported(tmp_path: Path) -> None:
    revisions = _export({3: [5], 4: [6], 7: [7]})
    write_revisions(tmp_path / "revisions", {3: ndjson(revisions[3]), 4: ndjson(revisions[4])},
                    gzipped=[4])
    (tmp_path / "index.csv").write_bytes(index_csv(revisions))
    root = LocalLocation(tmp_path)
    window = day_window("2024-01-31", None, None)
    found: list[Problem] = []
    problems = Problems(report=found.append)
    out = io.BytesIO()
    result = day_lines(root, overlapping(index_of(root, problems), window), window, out,
                       problems)
    assert result.files == ["revisions/3.json", "revisions/4.json.gz"]
    assert read_ndjson(out.getvalue()) == revisions[3] + revisions[4]
    assert [(p.line, p.reason) for p in found] == [
        (4, f"revisions/7.json is listed but missing from {tmp_path}")]
    with pytest.raises(MalformedInput):
        strict = Problems(strict=True)
        day_lines(root, overlapping(index_of(root, strict), window), window, io.BytesIO(),
                  strict)


def test_an_export_without_index_csv_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"no index.csv in {tmp_path}"):
        index_of(LocalLocation(tmp_path), Problems())
