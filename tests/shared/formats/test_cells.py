"""CSV cells people open: a row with a CR is quoted so every reader splits it as written; the
bad-row report neutralises formulas as ``files to-csv`` does.  Pure."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.formats.cells import CsvWriter
from shared.formats.rejects import REJECT_HEADER, Reject, format_rejects

pytestmark = pytest.mark.timeout(60)


def written(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = CsvWriter(out)
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


def read_back(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_a_lone_cr_is_quoted_and_reads_back_as_written() -> None:
    rows = [["a\rb", "c"], ["plain", "row"], ["x", "ends\r"]]
    text = written(rows)
    assert text == '"a\rb","c"\nplain,row\n"x","ends\r"\n'
    assert read_back(text) == rows


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(alphabet=st.sampled_from('ab,"\r\n =\t'), max_size=6),
                         min_size=1, max_size=4), max_size=5))
def test_any_text_rows_read_back_as_written(rows: list[list[str]]) -> None:
    assert read_back(written(rows)) == rows


def test_reject_report_neutralises_formulas_and_quotes_cr() -> None:
    rejects = [Reject(1, 2, "identity", "missing Identity", '=HYPERLINK("http://x","y"),1,E'),
               Reject(2, 3, "fields", "expected 3 fields, found 2", "u\r2,-5"),
               Reject(3, 5, "timestamp", "Timestamp '+1' is not whole Unix seconds", "-5")]
    rows = read_back(format_rejects(rejects, with_header=True).decode("utf-8"))
    assert rows == [list(REJECT_HEADER),
                    ["1", "2", "missing Identity", '\'=HYPERLINK("http://x","y"),1,E'],
                    ["2", "3", "expected 3 fields, found 2", "u\r2,-5"],
                    ["3", "5", "Timestamp '+1' is not whole Unix seconds", "-5"]]
