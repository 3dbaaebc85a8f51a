"""``files … -o PATH`` writes through to anything that is not a regular file (a FIFO,
``/dev/null``) and never replaces a symbolic link or a device; a regular file is replaced whole
or not at all (test_files_cli)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from tests.conftest import Env, invoke_cli
from tests.shared.filetools.exportset import ndjson, write_revisions

pytestmark = pytest.mark.timeout(60)

LINES = [{"_p": "anna", "_t": 1706659200, "_n": "Signed Up"}]


def to_csv(env: Env, tmp_path: Path, target: Path) -> None:
    write_revisions(tmp_path / "in", {1: ndjson(LINES)})
    result = invoke_cli(env, "files", "to-csv", str(tmp_path / "in"), "-o", str(target))
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


EXPECTED = b"_p,_p2,_t,_n\nanna,,1706659200,Signed Up\n"


def test_output_to_dev_null_writes_through_and_leaves_the_device(env: Env,
                                                                 tmp_path: Path) -> None:
    before = os.stat("/dev/null")
    to_csv(env, tmp_path, Path("/dev/null"))
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_output_to_a_fifo_writes_through_to_its_reader(env: Env, tmp_path: Path) -> None:
    # Given a FIFO with a reader on the other end
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    # When the output goes there
    to_csv(env, tmp_path, fifo)
    reader.join(timeout=10)
    # Then the reader got the CSV and the FIFO is still a FIFO
    assert received == [EXPECTED]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_output_through_a_symlink_writes_the_file_it_names_and_keeps_the_link(
        env: Env, tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_bytes(b"old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    to_csv(env, tmp_path, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == EXPECTED


def test_output_through_a_dangling_symlink_creates_the_file_it_names(
        env: Env, tmp_path: Path) -> None:
    real = tmp_path / "later.csv"
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    to_csv(env, tmp_path, link)
    assert link.is_symlink() and real.read_bytes() == EXPECTED
