"""``bucketbridge files …`` (in this process; a real one where a terminal is the point): every
conversion, local and S3 inputs,
malformed lines (reported or --strict), usage errors as one line with exit status 2, progress
only on a terminal, and inputs byte for byte unchanged after every command."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from shared.store.s3 import S3
from tests.conftest import REPO, CliResult, Env, invoke_cli, run_cli
from tests.shared.filetools.exportset import (
    JAN_31_S,
    Line,
    bucket_digest,
    index_csv,
    ndjson,
    read_ndjson,
    revision_lines,
    tree_digest,
    write_revisions,
)

pytestmark = pytest.mark.timeout(180)


def bb(env: Env, *args: str) -> CliResult:
    """``bucketbridge files ARGS``, stdin, stdout and stderr never a terminal."""
    return invoke_cli(env, "files", *args)


def bb_process(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    """As ``bb``, in a process of its own: for a test that reads the log of the S3 server in
    this process while the command runs (the CLI quiets that log for its own process)."""
    return run_cli(env, "files", *args, input_text="", PYTHONIOENCODING="utf-8")


def assert_error(result: CliResult, message: str) -> None:
    assert result.stderr.splitlines() == [f"bucketbridge: error: {message}"], result.stderr
    assert result.returncode == 2


def ok(result: CliResult | subprocess.CompletedProcess[str]) -> str:
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    """An export as a customer downloads it: 300 revisions (some gzipped) and index.csv."""
    root = tmp_path / "export"
    revisions = {n: revision_lines(n) for n in range(1, 301)}
    write_revisions(root / "revisions", {n: ndjson(lines) for n, lines in revisions.items()},
                    gzipped=range(5, 301, 25))
    (root / "index.csv").write_bytes(index_csv(revisions))
    return root


def test_compile_writes_three_hundred_files_in_numeric_order(
        env: Env, export_dir: Path) -> None:
    before = tree_digest(export_dir)
    out = ok(bb(env, "compile", str(export_dir)))
    lines = read_ndjson(out.encode())
    assert [(line["Revision"], line["Position"]) for line in lines] == [
        (n, i) for n in range(1, 301) for i in (0, 1)]
    assert out.endswith("}\n") and "\n\n" not in out
    assert tree_digest(export_dir) == before


def test_compile_reads_an_s3_prefix_into_a_file(
        env: Env, s3: S3, export_bucket: str, tmp_path: Path) -> None:
    # Given revisions 1..12 in a bucket, 10 and 11 gzipped
    import gzip

    for n in range(1, 13):
        body = ndjson(revision_lines(n))
        key = f"acme/revisions/{n}.json" + (".gz" if n in (10, 11) else "")
        s3.put(export_bucket, key, gzip.compress(body) if n in (10, 11) else body)
    before = bucket_digest(s3, export_bucket)
    # When they are compiled to a file
    target = tmp_path / "all.json"
    ok(bb(env, "compile", f"s3://{export_bucket}/acme/", "-o", str(target)))
    # Then the file holds every line in numeric order and the bucket is unchanged
    assert [line["Revision"] for line in read_ndjson(target.read_bytes())] == [
        n for n in range(1, 13) for _ in (0, 1)]
    assert bucket_digest(s3, export_bucket) == before


MIXED: list[Line] = [
    {"_p": "anna", "_t": 1706659200, "_n": "Signed Up", "Plan": "=2+5", "Größe": "L"},
    {"_p": "anna", "_p2": "anna@example.com"},
    {"_p": "@bob", "_t": 1706659300, "_n": "Paid", "Amount": -12.5, "東京": "-3",
     "Note": "+cmd|' /C calc'!A0"},
]


def test_to_csv_neutralises_formulas_and_raw_does_not(env: Env, tmp_path: Path) -> None:
    write_revisions(tmp_path / "in", {1: ndjson(MIXED[:2]), 2: ndjson(MIXED[2:])}, gzipped=[2])
    before = tree_digest(tmp_path / "in")
    target = tmp_path / "out.csv"
    ok(bb(env, "to-csv", str(tmp_path / "in"), "-o", str(target)))
    assert list(csv.reader(io.StringIO(target.read_text("utf-8"), newline=""))) == [
        ["_p", "_p2", "_t", "_n", "Plan", "Größe", "Amount", "東京", "Note"],
        ["anna", "", "1706659200", "Signed Up", "'=2+5", "L", "", "", ""],
        ["anna", "anna@example.com", "", "", "", "", "", "", ""],
        ["'@bob", "", "1706659300", "Paid", "", "", "-12.5", "-3", "'+cmd|' /C calc'!A0"],
    ]
    raw = list(csv.reader(io.StringIO(ok(bb(env, "to-csv", "--raw", str(tmp_path / "in"))),
                                      newline="")))
    assert raw[1][4] == "=2+5" and raw[3][0] == "@bob" and raw[3][-1] == "+cmd|' /C calc'!A0"
    assert tree_digest(tmp_path / "in") == before


def test_to_json_writes_a_standard_array(env: Env, tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_bytes(ndjson(MIXED))
    assert json.loads(ok(bb(env, "to-json", str(path)))) == MIXED


def test_split_aliases_writes_two_files(env: Env, tmp_path: Path) -> None:
    write_revisions(tmp_path / "in", {1: ndjson(MIXED)})
    before = tree_digest(tmp_path / "in")
    ok(bb(env, "split-aliases", str(tmp_path / "in"), "--aliases", str(tmp_path / "a.json"),
          "--others", str(tmp_path / "o.json")))
    assert read_ndjson((tmp_path / "a.json").read_bytes()) == [MIXED[1]]
    assert read_ndjson((tmp_path / "o.json").read_bytes()) == [MIXED[0], MIXED[2]]
    assert tree_digest(tmp_path / "in") == before


def test_filter_identity_follows_an_alias_chain(env: Env, tmp_path: Path) -> None:
    # Given A→B, C→B and B→D spread over files, after some of the events they connect
    files: dict[int, list[Line]] = {
        1: [{"_p": "D", "_t": 1, "_n": "x"}, {"_p": "Z", "_t": 2, "_n": "x"}],
        2: [{"_p": "A", "_p2": "B"}, {"_p": "C", "_t": 3, "_n": "y"}],
        3: [{"_p": "C", "_p2": "B"}, {"_p": "B", "_p2": "D"}, {"_p": "Y", "_p2": "Z"}]}
    write_revisions(tmp_path / "in", {n: ndjson(ls) for n, ls in files.items()})
    before = tree_digest(tmp_path / "in")
    # When the lines of A are asked for
    out = ok(bb(env, "filter-identity", str(tmp_path / "in"), "--identity", "A"))
    # Then D's and C's events come too, with every alias line between them, and not Z's
    assert read_ndjson(out.encode()) == [files[1][0], *files[2], files[3][0], files[3][1]]
    assert tree_digest(tmp_path / "in") == before


def _object_gets(caplog: pytest.LogCaptureFixture, bucket: str) -> list[str]:
    """The keys of ``bucket`` that moto's server (in this process) answered a GET for."""
    marker = f'"GET /{bucket}/'
    return [r.getMessage().split(marker)[1].split(" ")[0] for r in caplog.records
            if r.name == "werkzeug" and marker in r.getMessage()]


def test_day_reads_only_the_overlapping_revisions_of_an_s3_export(
        env: Env, s3: S3, export_bucket: str, caplog: pytest.LogCaptureFixture) -> None:
    # Given an export whose revisions that do not overlap 2024-01-30..31 are garbage: reading
    # any of them under --strict would end the run with exit status 2
    revisions = {1: [{"_p": "old", "_t": JAN_31_S - 3 * 86_400, "_n": "x"}],
                 2: [{"_p": "edge", "_t": JAN_31_S - 1}, {"_p": "in", "_t": JAN_31_S}],
                 3: [{"_p": "late", "_t": JAN_31_S + 86_399},
                     {"_p": "next", "_t": JAN_31_S + 86_400}],
                 4: [{"_p": "future", "_t": JAN_31_S + 90_000, "_n": "x"}]}
    for n, lines in revisions.items():
        body = ndjson(lines) if n in (2, 3) else b"{not json at all\n"
        s3.put(export_bucket, f"exp/revisions/{n}.json", body)
    s3.put(export_bucket, "exp/index.csv", index_csv(revisions))
    before = bucket_digest(s3, export_bucket)
    caplog.set_level(logging.INFO, logger="werkzeug")
    caplog.clear()
    # When that day's events are extracted
    out = ok(bb_process(env, "day", f"s3://{export_bucket}/exp", "--date", "2024-01-31",
                        "--strict"))
    # Then exactly the lines of that UTC day come out, and only index.csv, 2 and 3 were fetched
    assert [line["_p"] for line in read_ndjson(out.encode())] == ["in", "late"]
    assert _object_gets(caplog, export_bucket) == [
        "exp/index.csv", "exp/revisions/2.json", "exp/revisions/3.json"]
    out = ok(bb(env, "day", f"s3://{export_bucket}/exp", "--from", "2024-01-30", "--to",
                "2024-01-31", "--strict"))
    assert [line["_p"] for line in read_ndjson(out.encode())] == ["edge", "in", "late"]
    assert bucket_digest(s3, export_bucket) == before


BAD_FILE = (b'{"_p":"a","_t":1}\n'
            b"{nope\n"
            b"\n"
            b'"just a string"\n'
            b'{"_t":2,"_n":"x"}\n'
            b'{"_p":"b","_t":3}')


def test_malformed_lines_are_reported_with_their_place_and_skipped(
        env: Env, tmp_path: Path) -> None:
    write_revisions(tmp_path / "in", {1: ndjson(revision_lines(1)), 2: BAD_FILE})
    before = tree_digest(tmp_path / "in")
    result = bb(env, "compile", str(tmp_path / "in"))
    where = tmp_path / "in" / "2.json"
    assert result.returncode == 0
    assert [line.split(": bad JSON")[0] for line in result.stderr.splitlines()] == [
        f"bucketbridge: warning: {where} line 2",
        f"bucketbridge: warning: {where} line 3: blank line",
        f"bucketbridge: warning: {where} line 4: not a JSON object (a string)",
        f"bucketbridge: warning: {where} line 5: missing _p (identity)",
    ]
    assert [line["_p"] for line in read_ndjson(result.stdout.encode())] == [
        "user-1-0", "user-1-1", "a", "b"]
    assert tree_digest(tmp_path / "in") == before


@pytest.mark.parametrize("command", [["compile"], ["to-json"], ["to-csv"],
                                     ["filter-identity", "--identity", "a"]])
def test_strict_stops_at_the_first_bad_line_and_leaves_no_output(
        env: Env, tmp_path: Path, command: list[str]) -> None:
    write_revisions(tmp_path / "in", {1: ndjson(revision_lines(1)), 2: BAD_FILE})
    before = tree_digest(tmp_path / "in")
    target = tmp_path / "out" / "result"
    target.parent.mkdir()
    result = bb(env, *command, str(tmp_path / "in"), "-o", str(target), "--strict")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(
        f"bucketbridge: error: {tmp_path / 'in' / '2.json'} line 2: bad JSON: ")
    assert list(target.parent.iterdir()) == []  # neither the output nor a temporary file
    assert tree_digest(tmp_path / "in") == before


def test_many_bad_lines_are_shown_up_to_a_limit_then_counted(
        env: Env, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_bytes(b"{bad\n" * 150 + b'{"_p":"ok"}\n')
    result = bb(env, "compile", str(tmp_path / "bad.json"))
    lines = result.stderr.splitlines()
    assert result.returncode == 0 and len(lines) == 101
    assert lines[99].startswith(f"bucketbridge: warning: {tmp_path / 'bad.json'} line 100: ")
    assert lines[100] == "bucketbridge: warning: 150 malformed lines in all, 50 of them not shown"
    assert result.stdout == '{"_p":"ok"}\n'


@pytest.mark.parametrize(("args", "message"), [
    (["compile", "{tmp}/missing"], "no such file or directory: {tmp}/missing"),
    (["to-csv", "s3://"], "invalid S3 URL 's3://': expected s3://BUCKET/PREFIX"),
    (["compile", "s3://Not_A_Bucket/x"],
     "invalid bucket in S3 URL 's3://Not_A_Bucket/x' 'Not_A_Bucket': not an S3 bucket name"),
    (["day", "{tmp}/in", "--date", "2024-02-30"],
     "invalid --date '2024-02-30': day is out of range for month"),
    (["day", "{tmp}/in", "--date", "yesterday"],
     "invalid --date 'yesterday': expected a UTC date as YYYY-MM-DD"),
    (["day", "{tmp}/in", "--date", "2024-01-31", "--from", "2024-01-30"],
     "give either --date or --from/--to, not both"),
    (["day", "{tmp}/in", "--date", "2024-01-31"], "no index.csv in {tmp}/in"),
    (["day", "{tmp}/nowhere", "--date", "2024-01-31"], "no such directory: {tmp}/nowhere"),
    (["compile", "{tmp}/in", "-o", "{tmp}/in/revisions/1.json"],
     "refusing to write {tmp}/in/revisions/1.json: it is one of the inputs"),
    (["compile", "{tmp}/in", "-o", "{tmp}/nodir/x.json"],
     "cannot write {tmp}/nodir/x.json: no such directory {tmp}/nodir"),
    (["split-aliases", "{tmp}/in", "--aliases", "{tmp}/a", "--others", "{tmp}/a"],
     "--aliases and --others must be two different files"),
    (["to-json", "{tmp}/empty"], "no revision files (<n>.json or <n>.json.gz) in {tmp}/empty"),
])
def test_user_mistakes_are_one_line_and_exit_status_2(
        env: Env, tmp_path: Path, args: list[str], message: str) -> None:
    write_revisions(tmp_path / "in" / "revisions", {1: ndjson(revision_lines(1))})
    (tmp_path / "empty").mkdir()
    before = tree_digest(tmp_path / "in")
    tmp = str(tmp_path)
    result = bb(env, *(a.replace("{tmp}", tmp) for a in args))
    assert_error(result, message.replace("{tmp}", tmp))
    assert result.stdout == ""
    assert tree_digest(tmp_path / "in") == before


def test_progress_is_drawn_only_when_stderr_is_a_terminal(
        env: Env, export_dir: Path, tmp_path: Path) -> None:
    # Given stderr attached to a pseudo-terminal
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "producers", "files", "to-csv",
                             str(export_dir), "-o", str(tmp_path / "o.csv")],
                            env=env.as_dict(TERM="xterm", COLUMNS="120"), cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    drawn = b""
    while select.select([master], [], [], 30)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    # Then the bars of both passes were drawn there
    assert proc.wait(timeout=30) == 0
    assert b"collecting columns" in drawn and b"writing rows" in drawn
    # While on a pipe (every other test here) stderr stays empty
    assert ok(bb(env, "to-csv", str(export_dir), "-o", str(tmp_path / "p.csv"))) == ""
