"""The import CSV format: header validation and the row → export line mapping.  Pure."""

from __future__ import annotations

import pytest

from shared.errors import BadFile
from shared.formats.csvrows import (
    Columns,
    RowRejected,
    parse_header,
    row_kind,
    row_to_line,
)
from shared.formats.times import MAX_TIMESTAMP_S

pytestmark = pytest.mark.timeout(60)

IMPORT_T = 1_709_251_199  # the time of the import: the _t of alias rows without one


def header(text: str) -> Columns:
    return parse_header(text.split(","))


def convert(head: str, row: list[str]) -> dict[str, object]:
    return row_to_line(row, header(head), import_time_s=IMPORT_T)


def rejected(head: str, row: list[str]) -> RowRejected:
    with pytest.raises(RowRejected) as raised:
        convert(head, row)
    return raised.value


def bad_header(cells: list[str]) -> str:
    with pytest.raises(BadFile) as raised:
        parse_header(cells)
    assert raised.value.reason == str(raised.value)
    return raised.value.reason


# -- headers -------------------------------------------------------------------------------------


def test_header_positions_of_known_columns() -> None:
    # Given a header with every kind of column and one unknown column
    columns = header("Prop:Plan,Identity,Note,Timestamp,Event,Alias,Prop:Seats")
    # Then each known column is found where it is, and properties keep header order
    assert columns == Columns(width=7, identity=1, timestamp=3, event=4, alias=5,
                              props=((0, "Plan"), (6, "Seats")))
    assert columns.names == ["Identity", "Timestamp", "Event", "Alias", "Prop:Plan",
                             "Prop:Seats"]


def test_header_names_ignore_case_and_surrounding_spaces() -> None:
    # Given column names in odd case with spaces around them
    columns = parse_header([" IDENTITY", "timestamp ", " EvEnT ", "PROP: Plan Name ",
                            "prop:seats"])
    # Then they are recognised, and property names keep their own case (trimmed)
    assert (columns.identity, columns.timestamp, columns.event, columns.alias) == (0, 1, 2, None)
    assert columns.props == ((3, "Plan Name"), (4, "seats"))


def test_alias_file_may_leave_out_timestamp() -> None:
    columns = header("Identity,Alias")
    assert (columns.identity, columns.timestamp, columns.event, columns.alias) == (0, None, None, 1)
    assert columns.names == ["Identity", "Alias"]


def test_unknown_columns_are_ignored_even_when_repeated() -> None:
    columns = header("Identity,Timestamp,Note,Note,Event")
    assert columns.width == 5
    assert convert("Identity,Timestamp,Note,Note,Event", ["u", "5", "x", "y", "E"]) == \
        {"_p": "u", "_t": 5, "_n": "E"}


@pytest.mark.parametrize(("cells", "reason"), [
    ([], "file is empty: no header row"),
    ([""], "file is empty: no header row"),
    (["", "  ", ""], "file is empty: no header row"),
    (["\x89PNG\x00\x00", "x"], "not a CSV text file: the first line contains binary data"),
    (["Identity", "Time\x00stamp"], "not a CSV text file: the first line contains binary data"),
    (["Identity", "Event"], "header has no Timestamp column (only an alias file, with an Alias "
                            "column, may leave it out)"),
    (["Identity", "Event", "Prop:Plan"], "header has no Timestamp column (only an alias file, "
                                         "with an Alias column, may leave it out)"),
    (["Timestamp", "Event", "Alias"], "header has no Identity column"),
    (["User", "Timestamp", "Event"], "header has no Identity column"),
    (["Identity", "Timestamp", "identity"],
     "header columns 1 ('Identity') and 3 ('identity') name the same column"),
    (["Identity", "Timestamp", "Event", " EVENT "],
     "header columns 3 ('Event') and 4 ('EVENT') name the same column"),
    (["Identity", "Timestamp", "Prop:Plan", "prop:plan"],
     "header columns 3 ('Prop:Plan') and 4 ('prop:plan') name the same property"),
    (["Identity", "Timestamp", "Prop:Plan", "Prop: Plan"],
     "header columns 3 ('Prop:Plan') and 4 ('Prop: Plan') name the same property"),
    (["Prop:Plan ", "Identity", "Timestamp", "PROP:  plan"],
     "header columns 1 ('Prop:Plan') and 4 ('PROP:  plan') name the same property"),
    (["Identity", "Timestamp", "Prop:"], "header column 3 is 'Prop:' without a property name"),
    (["Identity", "Prop:  ", "Timestamp"], "header column 2 is 'Prop:' without a property name"),
    (["Identity", "Timestamp", "Prop:_x"], "property name '_x' is reserved (names may not start "
                                           "with _)"),
    (["Identity", "Timestamp", "Prop:_p"], "property name '_p' is reserved (names may not start "
                                           "with _)"),
])
def test_unusable_headers_are_bad_files_with_a_specific_reason(cells: list[str],
                                                               reason: str) -> None:
    assert bad_header(cells) == reason


def test_data_as_first_line_is_no_header_row() -> None:
    # Given a file whose first line is already data
    reason = bad_header(["user1", "1700000000", "Signed Up", "pro"])
    # Then the reason says there is no header row and shows the start of that line
    assert reason == ("no header row: the first line ('user1,1700000000,Signed Up,pro') names "
                      "none of the columns Identity, Timestamp, Event, Alias, Prop:<Name>")


def test_no_header_row_shows_at_most_four_cells_and_eighty_chars() -> None:
    reason = bad_header(["a" * 50, "b" * 50, "c", "d", "e"])
    shown = ("a" * 50 + "," + "b" * 50)[:80]
    assert reason.startswith(f"no header row: the first line ({shown!r}) names none")


# -- rows ----------------------------------------------------------------------------------------


def test_event_row_with_properties() -> None:
    # Given an event row with two properties
    line = convert("Identity,Timestamp,Event,Prop:Plan,Prop:Seats",
                   ["user1", "1700000000", "Signed Up", "pro", "5"])
    # Then it maps to an event line with its properties, values kept as strings
    assert line == {"_p": "user1", "_t": 1_700_000_000, "_n": "Signed Up", "Plan": "pro",
                    "Seats": "5"}
    assert row_kind(line) == "event"


def test_keys_come_in_fixed_order_then_properties_in_header_order() -> None:
    # Given a header whose columns are in an unusual order
    line = convert("Prop:Zeta,Event,Prop:Alpha,Timestamp,Identity,Prop:Mid",
                   ["z", "E", "a", "7", "u", "m"])
    # Then the line's keys are _p, _t, _n, then properties in header order
    assert list(line) == ["_p", "_t", "_n", "Zeta", "Alpha", "Mid"]


def test_alias_key_order_with_timestamp() -> None:
    line = convert("Prop:P,Alias,Timestamp,Identity", ["v", "other", "9", "u"])
    assert list(line.items()) == [("_p", "u"), ("_t", 9), ("_p2", "other"), ("P", "v")]
    assert row_kind(line) == "alias"


def test_property_set_row_has_no_event() -> None:
    # Given a row with properties but no event
    line = convert("Identity,Timestamp,Event,Prop:Plan", ["user1", "1700000000", "", "pro"])
    # Then it is a property set: _n is absent
    assert line == {"_p": "user1", "_t": 1_700_000_000, "Plan": "pro"}
    assert row_kind(line) == "properties"


def test_property_set_without_an_event_column() -> None:
    assert convert("Identity,Timestamp,Prop:Plan", ["u", "1", "pro"]) == \
        {"_p": "u", "_t": 1, "Plan": "pro"}


def test_alias_row_without_timestamp_column() -> None:
    line = convert("Identity,Alias", ["anon-1", "user@example.com"])
    assert line == {"_p": "anon-1", "_t": IMPORT_T, "_p2": "user@example.com"}
    assert row_kind(line) == "alias"


def test_alias_row_with_empty_timestamp() -> None:
    line = convert("Identity,Timestamp,Event,Alias", ["anon-1", " ", "", "user1"])
    assert line == {"_p": "anon-1", "_t": IMPORT_T, "_p2": "user1"}


def test_alias_row_with_timestamp_keeps_it() -> None:
    line = convert("Identity,Timestamp,Event,Alias", ["anon-1", "1700000000", "", "user1"])
    assert line == {"_p": "anon-1", "_t": 1_700_000_000, "_p2": "user1"}


def test_empty_values_are_left_out() -> None:
    # Given a row with an empty property among filled ones
    line = convert("Identity,Timestamp,Event,Prop:A,Prop:B,Prop:C",
                   ["u", "1", "E", "", "b", ""])
    # Then only the filled property is in the line
    assert line == {"_p": "u", "_t": 1, "_n": "E", "B": "b"}


def test_identity_event_and_alias_are_trimmed_property_values_are_not() -> None:
    line = convert("Identity,Timestamp,Event,Prop:Note", [" u1 ", " 12 ", " E ", " x y "])
    assert line == {"_p": "u1", "_t": 12, "_n": "E", "Note": " x y "}


def test_timestamp_range_edges() -> None:
    head = "Identity,Timestamp,Event"
    assert convert(head, ["u", "0", "E"])["_t"] == 0
    assert convert(head, ["u", "0001700000000", "E"])["_t"] == 1_700_000_000
    assert convert(head, ["u", str(MAX_TIMESTAMP_S), "E"])["_t"] == MAX_TIMESTAMP_S


def test_unicode_values_pass_through() -> None:
    line = convert("Identity,Timestamp,Event,Prop:Stadt", ["jürgen", "1", "Bestellt ✓", "Köln"])
    assert line == {"_p": "jürgen", "_t": 1, "_n": "Bestellt ✓", "Stadt": "Köln"}


# -- rejected rows -------------------------------------------------------------------------------

EVENTS = "Identity,Timestamp,Event,Prop:Plan"


@pytest.mark.parametrize(("head", "row", "code", "reason"), [
    (EVENTS, ["", "1", "E", "p"], "identity", "missing Identity"),
    (EVENTS, ["   ", "1", "E", "p"], "identity", "missing Identity"),
    (EVENTS, ["u", "", "E", "p"], "timestamp", "missing Timestamp"),
    (EVENTS, ["u", "  ", "E", "p"], "timestamp", "missing Timestamp"),
    (EVENTS, ["u", "yesterday", "E", "p"], "timestamp",
     "Timestamp 'yesterday' is not whole Unix seconds"),
    (EVENTS, ["u", "-5", "E", "p"], "timestamp", "Timestamp '-5' is not whole Unix seconds"),
    (EVENTS, ["u", "+5", "E", "p"], "timestamp", "Timestamp '+5' is not whole Unix seconds"),
    (EVENTS, ["u", "1700000000.5", "E", "p"], "timestamp",
     "Timestamp '1700000000.5' is not whole Unix seconds"),
    (EVENTS, ["u", "2024-01-01T00:00:00Z", "E", "p"], "timestamp",
     "Timestamp '2024-01-01T00:00:00Z' is not whole Unix seconds"),
    (EVENTS, ["u", "\u0661\u0662\u0663", "E", "p"], "timestamp",
     "Timestamp '\u0661\u0662\u0663' is not whole Unix seconds"),
    (EVENTS, ["u", "1e9", "E", "p"], "timestamp", "Timestamp '1e9' is not whole Unix seconds"),
    (EVENTS, ["u", "1700000000000", "E", "p"], "timestamp",
     "Timestamp 1700000000000 is out of range (milliseconds?)"),
    (EVENTS, ["u", str(MAX_TIMESTAMP_S + 1), "E", "p"], "timestamp",
     f"Timestamp {MAX_TIMESTAMP_S + 1} is out of range"),
    (EVENTS, ["u", "1", "E"], "fields", "expected 4 fields, found 3"),
    (EVENTS, ["u", "1", "E", "p", "extra"], "fields", "expected 4 fields, found 5"),
    (EVENTS, [""], "fields", "expected 4 fields, found 1"),
    ("Identity,Timestamp,Event,Alias", ["u", "1", "E", "other"], "event_and_alias",
     "a row may have an Event or an Alias, not both"),
    (EVENTS, ["u", "1", "", ""], "empty", "row has no Event, Alias or property values"),
    ("Identity,Timestamp,Alias", ["u", "1", ""], "empty",
     "row has no Event, Alias or property values"),
    ("Identity,Timestamp,Event,Alias", ["u", "", "E", ""], "timestamp", "missing Timestamp"),
    ("Identity,Alias,Event", ["u", "", "E"], "timestamp", "missing Timestamp"),
])
def test_rejected_rows_carry_a_code_and_a_reason(head: str, row: list[str], code: str,
                                                 reason: str) -> None:
    # When a bad row is converted
    exc = rejected(head, row)
    # Then it is rejected with its fixed code and a reason naming the problem
    assert (exc.code, exc.reason) == (code, reason)
    assert str(exc) == reason


@pytest.mark.parametrize("digits", [14, 4_300, 4_301, 100_000])
def test_timestamp_of_thousands_of_digits_is_a_rejected_row(digits: int) -> None:
    # Given a Timestamp too long for int() (over 4,300 digits raises ValueError)
    exc = rejected(EVENTS, ["u", "9" * digits, "E", "p"])
    # Then the row is rejected, and the reason stays short
    assert (exc.code, exc.reason) == ("timestamp", f"Timestamp of {digits} digits is out of range")


def test_leading_zeros_do_not_count_as_digits() -> None:
    assert convert(EVENTS, ["u", "0" * 5_000 + "1700000000", "E", ""])["_t"] == 1_700_000_000


def test_alias_row_without_timestamp_gets_the_import_time_every_line_has_t() -> None:
    # Given alias rows with and without a Timestamp, and event rows
    head = "Identity,Timestamp,Event,Alias"
    rows = [["a", "", "", "b"], ["a", "5", "", "b"], ["a", "6", "E", ""]]
    # Then every line has _t: its own, or the import time for an alias row without one
    assert [convert(head, r)["_t"] for r in rows] == [IMPORT_T, 5, 6]


def test_long_bad_timestamp_is_shown_cut_short() -> None:
    exc = rejected(EVENTS, ["u", "x" * 100, "E", "p"])
    assert exc.reason == f"Timestamp {'x' * 40!r} is not whole Unix seconds"


def test_field_count_is_checked_before_anything_else() -> None:
    # A short row without identity is reported for its width, the first thing that is wrong
    assert rejected(EVENTS, ["", "x"]).code == "fields"


def test_identity_is_checked_before_timestamp() -> None:
    assert rejected(EVENTS, ["", "bad", "E", ""]).code == "identity"
