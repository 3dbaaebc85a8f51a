"""Revision metadata: what a revision says about itself survives S3 user metadata.  Pure."""

from __future__ import annotations

import pytest

from shared.store.revisions import MAX_END_REASON_CHARS, FileEnd, RevisionMeta, revision_number

pytestmark = pytest.mark.timeout(10)

META = RevisionMeta(number=7, events=0, min_t=None, max_t=None,
                    written_at="2024-02-01T12:00:00Z", source="csv",
                    source_key="in coming/accounts-ü.csv", source_etag='"abc"', record_start=21,
                    record_end=20, byte_start=200, byte_end=200, line_end=21, rejected=0,
                    file_end=FileEnd.FAILED, file_first_revision=3,
                    end_reason="file changed while it was being imported")


def test_metadata_round_trips_with_ascii_only_values() -> None:
    metadata = META.to_metadata()
    assert all(value.isascii() for value in metadata.values())
    assert RevisionMeta.from_metadata(metadata) == META


def test_an_open_revision_has_no_end_reason_in_its_metadata() -> None:
    open_meta = RevisionMeta(**{**META.__dict__, "file_end": FileEnd.OPEN, "end_reason": ""})
    assert "bb-end-reason" not in open_meta.to_metadata()
    assert not open_meta.ends_file and META.ends_file


def test_a_long_end_reason_is_cut_to_fit_s3_metadata() -> None:
    long = RevisionMeta(**{**META.__dict__, "end_reason": "x" * 5000})
    assert RevisionMeta.from_metadata(long.to_metadata()).end_reason == "x" * MAX_END_REASON_CHARS


@pytest.mark.parametrize("broken", [{"bb-file-end": "maybe"}, {"bb-events": "many"}, {}])
def test_unreadable_metadata_is_a_value_error(broken: dict[str, str]) -> None:
    metadata = {**META.to_metadata(), **broken} if broken else {}
    with pytest.raises(ValueError):
        RevisionMeta.from_metadata(metadata)


@pytest.mark.parametrize(("key", "number"), [
    ("sites/a/revisions/000000000012.json", 12), ("sites/a/revisions/12.json", None),
    ("sites/a/revisions/000000000012.json.tmp", None), ("sites/a/rejects/000000000012-3.csv",
                                                        None)])
def test_revision_numbers_come_only_from_revision_keys(key: str, number: int | None) -> None:
    assert revision_number(key) == number
