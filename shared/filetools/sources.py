"""Where export files are read from: a local file or directory, or an S3 object or prefix.

Revision files are ``<n>.json`` or ``<n>.json.gz`` directly under a directory (or prefix), or
under its ``revisions/`` when it has none of its own.  They are taken in numeric order of n
(``9.json`` before ``10.json``), never in the order a listing or a glob gives.  Gzip is
recognised by its magic bytes, whatever the name.  Nothing here writes, renames or deletes.
"""

from __future__ import annotations

import gzip
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from shared.errors import ObjectMissing, PermanentError, UsageError
from shared.formats.exportlines import Line, LineCheck, LineScanner, Problems
from shared.formats.streams import ByteSource, RawSource
from shared.store.s3 import S3
from shared.store.sites import validate_bucket

S3_SCHEME = "s3://"
REVISIONS_DIR = "revisions/"
GZIP_MAGIC = b"\x1f\x8b"
READ_BUFFER_BYTES = 1024 * 1024
_REVISION_NAME = re.compile(r"(\d+)\.json(?:\.gz)?\Z")

ByteCounter = Callable[[int], None]
S3Factory = Callable[[], S3]


def no_progress(_n: int) -> None:
    """A ``ByteCounter`` for callers that show no progress."""
    return None


@dataclass(frozen=True, slots=True)
class Part:
    """One file of an input, named relative to its location."""

    name: str  # "7.json", "revisions/7.json.gz", "export.json"
    size_bytes: int


def revision_number_of(name: str) -> int | None:
    """n for ``…/<n>.json`` or ``…/<n>.json.gz``; ``None`` for any other name."""
    match = _REVISION_NAME.match(name.rpartition("/")[2])
    return int(match.group(1)) if match else None


def order_revisions(parts: Iterable[Part]) -> list[Part]:
    """The revision files among ``parts`` in numeric order; other files are left out.

    Files directly at the top win over those in ``revisions/``.  Two files for one number
    (``7.json`` and ``7.json.gz``, or ``07.json``) are a ``UsageError``: neither is guessed.
    """
    top: dict[int, Part] = {}
    nested: dict[int, Part] = {}
    for part in parts:
        number = revision_number_of(part.name)
        if number is None:
            continue
        inside = part.name.startswith(REVISIONS_DIR)
        if "/" in part.name.removeprefix(REVISIONS_DIR if inside else ""):
            continue
        table = nested if inside else top
        if number in table:
            raise UsageError(f"revision {number} is there twice: {table[number].name} and "
                             f"{part.name}; keep one")
        table[number] = part
    chosen = top or nested
    return [chosen[n] for n in sorted(chosen)]


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, key or prefix)`` of ``s3://bucket/key``; ``UsageError`` if malformed."""
    if not url.startswith(S3_SCHEME):
        raise UsageError(f"invalid S3 URL {url!r}: expected s3://BUCKET/PREFIX")
    bucket, _, key = url[len(S3_SCHEME):].partition("/")
    if not bucket:
        raise UsageError(f"invalid S3 URL {url!r}: expected s3://BUCKET/PREFIX")
    validate_bucket(bucket, f"bucket in S3 URL {url!r}")
    return bucket, key


class Location(ABC):
    """A directory-like place files are read from."""

    @abstractmethod
    def describe(self, name: str = "") -> str:
        """How ``name`` under this location is shown to the user."""

    @abstractmethod
    def list(self) -> Iterator[Part]:
        """Files directly under the location and under its ``revisions/``."""

    @abstractmethod
    def open_raw(self, name: str, start_byte: int = 0) -> ByteSource:
        """The stored bytes of ``name`` from ``start_byte``; ``ObjectMissing`` if absent."""

    def local_path(self, name: str) -> Path | None:
        """The file on this machine that ``name`` is, if it is one."""
        return None


class LocalLocation(Location):
    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self, name: str = "") -> str:
        return str(self.root / name) if name else str(self.root)

    def list(self) -> Iterator[Part]:
        for folder, prefix in ((self.root, ""), (self.root / REVISIONS_DIR, REVISIONS_DIR)):
            if not folder.is_dir():
                continue
            try:
                entries = sorted(folder.iterdir())
            except OSError as exc:
                raise UsageError(f"cannot list {folder}: {exc.strerror}") from None
            for path in entries:
                if path.is_file():
                    yield Part(prefix + path.name, path.stat().st_size)

    def open_raw(self, name: str, start_byte: int = 0) -> ByteSource:
        path = self.root / name
        try:
            file = path.open("rb", buffering=0)
        except FileNotFoundError:
            raise ObjectMissing(f"{path} does not exist") from None
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
        if start_byte:
            file.seek(start_byte)
        return file

    def local_path(self, name: str) -> Path | None:
        return self.root / name


class S3Location(Location):
    def __init__(self, s3: S3, bucket: str, prefix: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"

    def describe(self, name: str = "") -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}{name}"

    def list(self) -> Iterator[Part]:
        for prefix in (self.prefix, self.prefix + REVISIONS_DIR):
            for info in self.s3.list(self.bucket, prefix, delimiter="/"):
                yield Part(info.key[len(self.prefix):], info.size_bytes)

    def open_raw(self, name: str, start_byte: int = 0) -> ByteSource:
        return self.s3.open(self.bucket, self.prefix + name, start_byte=start_byte)



class OpenedPart:
    """A part's decompressed bytes, positioned where asked; close it (or use ``with``)."""

    def __init__(self, file: IO[bytes], gzipped: bool, layers: list[IO[bytes]]) -> None:
        self.file = file
        self.gzipped = gzipped
        self._layers = layers

    def close(self) -> None:
        for layer in self._layers:
            layer.close()

    def __enter__(self) -> OpenedPart:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True)
class Input:
    """The files a command reads, in the order it reads them."""

    location: Location
    parts: tuple[Part, ...]

    @property
    def total_bytes(self) -> int:
        return sum(p.size_bytes for p in self.parts)

    def describe(self, part: Part) -> str:
        return self.location.describe(part.name)

    def local_paths(self) -> list[Path]:
        return [p for p in (self.location.local_path(part.name) for part in self.parts) if p]

    def open(self, part: Part, *, start_byte: int = 0, gzipped: bool | None = None,
             on_bytes: ByteCounter = no_progress,
             tap: Callable[[bytes], object] | None = None) -> OpenedPart:
        """Open ``part`` decompressed, at ``start_byte`` of its decompressed bytes.

        ``gzipped=None`` sniffs the magic bytes (only from the start).  ``on_bytes`` counts the
        stored bytes read (for progress); ``tap`` sees every decompressed byte (for hashing).
        """
        if gzipped is None and start_byte:
            raise ValueError("a part opened past its start must say whether it is gzipped")
        stored_start = 0 if gzipped in (None, True) else start_byte
        raw = self.location.open_raw(part.name, stored_start)
        stored = io.BufferedReader(RawSource(raw, on_bytes), buffer_size=READ_BUFFER_BYTES)
        layers: list[IO[bytes]] = [stored]
        try:
            if gzipped is None:
                gzipped = stored.peek(len(GZIP_MAGIC))[:len(GZIP_MAGIC)] == GZIP_MAGIC
            if gzipped:
                inflater = gzip.GzipFile(fileobj=stored, mode="rb")
                # GzipFile.readline runs in Python; a BufferedReader on top makes it C.
                layers.insert(0, io.BufferedReader(RawSource(inflater),
                                                   buffer_size=READ_BUFFER_BYTES))
            if tap is not None:
                layers.insert(0, io.BufferedReader(RawSource(layers[0], tap=tap),
                                                   buffer_size=READ_BUFFER_BYTES))
            opened = OpenedPart(layers[0], gzipped, layers)
            if gzipped and start_byte:
                _skip(opened.file, start_byte, self.describe(part))
        except BaseException:
            for layer in layers:
                layer.close()
            raise
        return opened

    def lines(self, problems: Problems, on_bytes: ByteCounter = no_progress,
              check: LineCheck | None = None) -> Iterator[tuple[bytes, Line]]:
        """Every valid line of every part, in order (bad ones go to ``problems``)."""
        for part in self.parts:
            with self.open(part, on_bytes=on_bytes) as opened:
                yield from LineScanner(opened.file, self.describe(part), problems, check=check)


def _skip(file: IO[bytes], count_bytes: int, where: str) -> None:
    """Read and drop ``count_bytes`` (a gzip stream cannot seek)."""
    left = count_bytes
    while left > 0:
        chunk = file.read(min(left, READ_BUFFER_BYTES))
        if not chunk:
            raise PermanentError(f"{where} is shorter than the recorded position "
                                 f"({count_bytes} bytes)")
        left -= len(chunk)


def resolve_input(text: str, s3_factory: S3Factory) -> Input:
    """A file (local or ``s3://bucket/key``), or the revision files of a directory or prefix."""
    if text.startswith(S3_SCHEME):
        bucket, key = parse_s3_url(text)
        s3 = s3_factory()
        if key and not key.endswith("/"):
            info = s3.head(bucket, key)
            if info is not None:
                folder, _, name = key.rpartition("/")
                return Input(S3Location(s3, bucket, folder), (Part(name, info.size_bytes),))
        location: Location = S3Location(s3, bucket, key)
    else:
        path = Path(text)
        if path.is_file():
            return Input(LocalLocation(path.parent), (Part(path.name, path.stat().st_size),))
        if not path.is_dir():
            raise UsageError(f"no such file or directory: {text}")
        location = LocalLocation(path)
    parts = order_revisions(location.list())
    if not parts:
        raise UsageError(f"no revision files (<n>.json or <n>.json.gz) in "
                         f"{location.describe()}")
    return Input(location, tuple(parts))


def resolve_root(text: str, s3_factory: S3Factory) -> Location:
    """An export root (holding ``index.csv`` and ``revisions/``): a directory or S3 prefix."""
    if text.startswith(S3_SCHEME):
        bucket, prefix = parse_s3_url(text)
        return S3Location(s3_factory(), bucket, prefix)
    path = Path(text)
    if not path.is_dir():
        raise UsageError(f"no such directory: {text}")
    return LocalLocation(path)


def read_small(location: Location, name: str, limit_bytes: int = 256 * 1024 * 1024) -> bytes:
    """The whole of a small file such as ``index.csv``; ``ObjectMissing`` if absent."""
    source = location.open_raw(name)
    try:
        chunks = []
        total = 0
        while chunk := source.read(READ_BUFFER_BYTES):
            total += len(chunk)
            if total > limit_bytes:
                raise PermanentError(f"{location.describe(name)} is larger than "
                                     f"{limit_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        source.close()
