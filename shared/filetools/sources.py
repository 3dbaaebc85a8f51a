"""Where export files are read from: a local file or directory, or an S3 object or prefix.

Revision files are ``<n>.json`` or ``<n>.json.gz`` directly under a directory (or prefix), or
under its ``revisions/`` when it has none of its own.  They are taken in numeric order of n
(``9.json`` before ``10.json``), never in the order a listing or a glob gives.  Gzip is
recognised by its magic bytes, whatever the name.  Nothing here writes, renames or deletes.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared.errors import ObjectMissing, PermanentError, UserError
from shared.formats.exportlines import Line, LineCheck, LineScanner, Problems
from shared.formats.names import validate_bucket
from shared.formats.streams import READ_BUFFER_BYTES, ByteSource, Opened, open_stream, skip_bytes

S3_SCHEME = "s3://"
REVISIONS_DIR = "revisions/"
_REVISION_NAME = re.compile(r"(\d+)\.json(?:\.gz)?\Z")

ByteCounter = Callable[[int], None]


class StoredObject(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def size_bytes(self) -> int: ...


class ObjectReader(Protocol):
    """What the tools need of an object store: list, look at and read objects, never write.
    The CLI passes bucketbridge's S3 adapter; the tools never import it."""

    def list(self, bucket: str, prefix: str = "", *, start_after: str = "",
             delimiter: str = "") -> Iterator[StoredObject]: ...

    def head(self, bucket: str, key: str) -> StoredObject | None: ...

    def open(self, bucket: str, key: str, *, if_match: str | None = None,
             start_byte: int = 0, end_byte: int | None = None) -> ByteSource: ...


ReaderFactory = Callable[[], ObjectReader]


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
    (``7.json`` and ``7.json.gz``, or ``07.json``) are a ``UserError``: neither is guessed.
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
            raise UserError(f"revision {number} is there twice: {table[number].name} and "
                             f"{part.name}; keep one")
        table[number] = part
    chosen = top or nested
    return [chosen[n] for n in sorted(chosen)]


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, key or prefix)`` of ``s3://bucket/key``; ``UserError`` if malformed."""
    if not url.startswith(S3_SCHEME):
        raise UserError(f"invalid S3 URL {url!r}: expected s3://BUCKET/PREFIX")
    bucket, _, key = url[len(S3_SCHEME):].partition("/")
    if not bucket:
        raise UserError(f"invalid S3 URL {url!r}: expected s3://BUCKET/PREFIX")
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
                raise UserError(f"cannot list {folder}: {exc.strerror}") from None
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
            raise UserError(f"cannot read {path}: {exc.strerror}") from None
        if start_byte:
            file.seek(start_byte)
        return file

    def local_path(self, name: str) -> Path | None:
        return self.root / name


class S3Location(Location):
    def __init__(self, s3: ObjectReader, bucket: str, prefix: str) -> None:
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
             tap: Callable[[bytes], object] | None = None) -> Opened:
        """Open ``part`` decompressed, at ``start_byte`` of its decompressed bytes.

        ``gzipped=None`` sniffs the magic bytes (only from the start).  ``on_bytes`` counts the
        stored bytes read (for progress); ``tap`` sees every decompressed byte (for hashing).
        """
        if gzipped is None and start_byte:
            raise ValueError("a part opened past its start must say whether it is gzipped")
        stored_start = 0 if gzipped in (None, True) else start_byte
        opened = open_stream(self.location.open_raw(part.name, stored_start), gzipped=gzipped,
                             on_bytes=on_bytes, tap=tap)
        if opened.gzipped and start_byte:
            try:
                if skip_bytes(opened.file, start_byte) < start_byte:
                    raise PermanentError(f"{self.describe(part)} is shorter than the recorded "
                                         f"position ({start_byte} bytes)")
            except BaseException:
                opened.close()
                raise
        return opened

    def only_file(self) -> PartFile:
        """The one file of this input (for a command that reads exactly one)."""
        if len(self.parts) != 1:
            raise UserError(f"{self.location.describe()} holds {len(self.parts)} files where "
                            "one is needed; compile them into one first (files compile)")
        return PartFile(self, self.parts[0])

    def lines(self, problems: Problems, on_bytes: ByteCounter = no_progress,
              check: LineCheck | None = None) -> Iterator[tuple[bytes, Line]]:
        """Every valid line of every part, in order (bad ones go to ``problems``)."""
        for part in self.parts:
            with self.open(part, on_bytes=on_bytes) as opened:
                yield from LineScanner(opened.file, self.describe(part), problems, check=check)


@dataclass(frozen=True)
class PartFile:
    """One part of an input, as a file of its own."""

    input: Input
    part: Part

    @property
    def name(self) -> str:
        return self.part.name

    def describe(self) -> str:
        return self.input.describe(self.part)

    def open(self, *, start_byte: int = 0, gzipped: bool | None = None,
             on_bytes: ByteCounter = no_progress,
             tap: Callable[[bytes], object] | None = None) -> Opened:
        return self.input.open(self.part, start_byte=start_byte, gzipped=gzipped,
                               on_bytes=on_bytes, tap=tap)


def resolve_input(text: str, reader_factory: ReaderFactory) -> Input:
    """A file (local or ``s3://bucket/key``), or the revision files of a directory or prefix."""
    if text.startswith(S3_SCHEME):
        bucket, key = parse_s3_url(text)
        s3 = reader_factory()
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
            raise UserError(f"no such file or directory: {text}")
        location = LocalLocation(path)
    parts = order_revisions(location.list())
    if not parts:
        raise UserError(f"no revision files (<n>.json or <n>.json.gz) in "
                         f"{location.describe()}")
    return Input(location, tuple(parts))


def resolve_root(text: str, reader_factory: ReaderFactory) -> Location:
    """An export root (holding ``index.csv`` and ``revisions/``): a directory or S3 prefix."""
    if text.startswith(S3_SCHEME):
        bucket, prefix = parse_s3_url(text)
        return S3Location(reader_factory(), bucket, prefix)
    path = Path(text)
    if not path.is_dir():
        raise UserError(f"no such directory: {text}")
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
