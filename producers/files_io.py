"""What ``bucketbridge files`` shows and writes: progress, warnings, and its output files.

Progress bars appear only when stderr is a terminal; otherwise stderr carries only warnings
(one line per malformed line, up to a limit) and errors.  An output file is written beside its
target under a temporary name and renamed into place only when the command succeeds, so a
failed or interrupted run never leaves a truncated file behind, and it never replaces one of
the command's inputs.  A symbolic link is followed (the file it names is written that way; the
link stays), and an output that is not a regular file (a FIFO, ``/dev/null``, a terminal) is
written through, as a shell redirection would, never replaced by a file.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from shared.errors import UserError
from shared.filetools.sources import ByteCounter, no_progress
from shared.formats.exportlines import Problem

MAX_WARNINGS = 100
WRITE_BUFFER_BYTES = 1024 * 1024


class _AmountColumn(ProgressColumn):
    """Bytes as sizes (``12.5/80.0 MB``), anything else as a count (``3/7``)."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn()
        self._count = MofNCompleteColumn()

    def render(self, task: Task) -> Text:
        column = self._bytes if task.fields.get("unit") == "bytes" else self._count
        return column.render(task)


class Feedback:
    """Progress bars (on a terminal only) and problem reports, on stderr."""

    def __init__(self, live: bool | None = None, max_warnings: int = MAX_WARNINGS) -> None:
        self.live = sys.stderr.isatty() if live is None else live
        self.max_warnings = max_warnings
        self.warnings = 0
        self._progress: Progress | None = None

    def __enter__(self) -> Feedback:
        if self.live:
            console = Console(stderr=True, highlight=False)
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      _AmountColumn(), TimeRemainingColumn(),
                                      console=console, transient=True)
            self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self.warnings > self.max_warnings:
            self._echo(f"bucketbridge: warning: {self.warnings} malformed lines in all, "
                       f"{self.warnings - self.max_warnings} of them not shown")

    def task(self, description: str, total: int, unit: str = "bytes") -> ByteCounter:
        """A bar over ``total`` bytes (or files, ``unit="files"``), shown from its first
        advance (so the bar of a second pass appears when that pass starts)."""
        if self._progress is None:
            return no_progress
        progress = self._progress
        task: list[TaskID] = []

        def advance(n: int) -> None:
            if not task:
                task.append(progress.add_task(description, total=total or None, unit=unit))
            progress.advance(task[0], n)

        return advance

    def problem(self, problem: Problem) -> None:
        self.warnings += 1
        if self.warnings <= self.max_warnings:
            self._echo(f"bucketbridge: warning: {problem}")

    def note(self, text: str) -> None:
        """A closing remark for a person at a terminal; nothing when stderr is not one."""
        if self.live:
            self._echo(text)

    def _echo(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            click.echo(text, err=True)


def _is_input(target: Path, inputs: Sequence[Path]) -> bool:
    if not target.exists():
        return False
    return any(path.exists() and os.path.samefile(path, target) for path in inputs)


@contextmanager
def output(path: str | None, inputs: Sequence[Path] = ()) -> Iterator[IO[bytes]]:
    """Standard output (``None`` or ``-``), or ``path`` written whole or not at all."""
    if path is None or path == "-":
        out = sys.stdout.buffer
        try:
            yield out
            out.flush()
        except BrokenPipeError:
            # The reader went away (``| head``): stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(1) from None
        return
    # A link is followed to the file it names (a dangling one: where that file would be).
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise UserError(f"cannot write {path}: no such directory {target.parent}")
    if target.is_dir():
        raise UserError(f"cannot write {path}: it is a directory")
    if _is_input(target, inputs):
        raise UserError(f"refusing to write {path}: it is one of the inputs")
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with _through(path, target) as file:
            yield file
        return
    temporary = target.parent / f".{target.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with open(fd, "wb", buffering=WRITE_BUFFER_BYTES) as file:
            yield file
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def _through(path: str, target: Path) -> Iterator[IO[bytes]]:
    """Write into ``target`` itself (a FIFO, a device): it is never replaced, nor created."""
    try:
        fd = os.open(target, os.O_WRONLY)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    with open(fd, "wb", buffering=WRITE_BUFFER_BYTES) as file:
        yield file
