"""What the last run left, from the cursor and the files in the bucket.  Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shared.imports.cursor import Cursor, Recovery, progress, recover
from shared.store.revisions import FileEnd, RevisionMeta
from shared.store.s3 import ObjectInfo

pytestmark = pytest.mark.timeout(10)

WRITTEN = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
META = RevisionMeta(number=4, events=10, min_t=1, max_t=2, written_at="2024-02-01T12:00:00Z",
                    source="csv", source_key="accounts-1.csv", source_etag='"v1"',
                    record_start=11, record_end=20, byte_start=100, byte_end=200, line_end=21,
                    rejected=0, file_end=FileEnd.OPEN, file_first_revision=3)


def cursor(meta: RevisionMeta | None) -> Cursor:
    info = ObjectInfo("sites/acme/revisions/000000000004.json", 10, '"r"', WRITTEN)
    return Cursor(latest=4 if meta else 0, meta=meta, info=info if meta else None)


def file(key: str, etag: str = '"v1"', at: datetime = WRITTEN, size: int = 1000) -> ObjectInfo:
    return ObjectInfo(key, size, etag, at)


def test_no_cursor_means_nothing_to_recover() -> None:
    assert recover(cursor(None), [file("accounts-1.csv")]).recovery is Recovery.NOTHING


def test_an_open_file_still_there_unchanged_is_resumed() -> None:
    found = recover(cursor(META), [file("accounts-0.csv"), file("accounts-1.csv")])
    assert (found.recovery, found.file) == (Recovery.RESUME, file("accounts-1.csv"))


def test_an_open_file_replaced_is_changed() -> None:
    found = recover(cursor(META), [file("accounts-1.csv", etag='"v2"')])
    assert (found.recovery, found.file) == (Recovery.CHANGED, file("accounts-1.csv", '"v2"'))


def test_an_open_file_gone_vanished() -> None:
    assert recover(cursor(META), [file("accounts-2.csv")]).recovery is Recovery.VANISHED


@pytest.mark.parametrize("end", [FileEnd.DONE, FileEnd.FAILED])
def test_a_finished_file_still_there_is_unmoved(end: FileEnd) -> None:
    found = recover(cursor(replace(META, file_end=end)), [file("accounts-1.csv")])
    assert (found.recovery, found.file) == (Recovery.UNMOVED, file("accounts-1.csv"))


@pytest.mark.parametrize("later", [file("accounts-1.csv", etag='"v2"'),
                                   file("accounts-1.csv", at=datetime(2024, 2, 2, tzinfo=UTC))],
                         ids=["other-content", "uploaded-after-the-revision"])
def test_a_new_file_under_a_finished_files_name_is_a_new_file(later: ObjectInfo) -> None:
    found = recover(cursor(replace(META, file_end=FileEnd.DONE)), [later])
    assert (found.recovery, found.file) == (Recovery.NOTHING, None)


def test_progress_is_the_resumed_file_and_its_next_record() -> None:
    now = progress(cursor(META), [file("accounts-1.csv", size=900), file("accounts-2.csv")])
    assert now is not None
    assert (now.key, now.next_record, now.next_byte, now.size_bytes) == (
        "accounts-1.csv", 21, 200, 900)


def test_progress_skips_a_finished_file_that_is_not_moved_yet() -> None:
    now = progress(cursor(replace(META, file_end=FileEnd.DONE)),
                   [file("accounts-1.csv"), file("accounts-2.csv")])
    assert now is not None and (now.key, now.next_record) == ("accounts-2.csv", 1)


def test_progress_is_none_when_nothing_waits() -> None:
    assert progress(cursor(replace(META, file_end=FileEnd.DONE)), []) is None
