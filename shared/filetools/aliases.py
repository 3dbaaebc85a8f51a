"""One person's whole history: an identity and every identity linked to it by aliases.

An alias line ``{"_p": A, "_p2": B}`` says A and B are the same person, in both directions, and
links chain: with A→B, C→B and B→D, all four are one person.  ``AliasGraph`` is a union-find
over the identities that appear in alias lines only (a small fraction of an export), so the
graph fits in memory while the lines never do: the filter reads its input twice, once for the
graph and once to write the person's lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from shared.filetools.sources import ByteCounter, Input, no_progress
from shared.formats.exportlines import ALIAS, IDENTITY, Line, Problems


class AliasGraph:
    """Identities joined into groups by alias links (union-find with path halving)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._parent)

    def _root(self, identity: str) -> str:
        parent = self._parent
        while (up := parent[identity]) != identity:
            parent[identity] = parent[up]  # path halving keeps chains short
            identity = parent[identity]
        return identity

    def link(self, a: str, b: str) -> None:
        for identity in (a, b):
            self._parent.setdefault(identity, identity)
        root_a, root_b = self._root(a), self._root(b)
        if root_a != root_b:
            self._parent[max(root_a, root_b)] = min(root_a, root_b)

    def add_lines(self, lines: Iterable[Line]) -> None:
        for line in lines:
            alias = line.get(ALIAS)
            if alias is not None:
                self.link(line[IDENTITY], alias)

    def group(self, identity: str) -> frozenset[str]:
        """``identity`` and every identity linked to it, directly or through others."""
        if identity not in self._parent:
            return frozenset((identity,))
        root = self._root(identity)
        return frozenset(i for i in list(self._parent) if self._root(i) == root)


@dataclass(frozen=True)
class FilterResult:
    identities: frozenset[str]  # the person's identities, the requested one included
    lines: int


def belongs(line: Line, identities: frozenset[str]) -> bool:
    return line[IDENTITY] in identities or line.get(ALIAS) in identities


def filter_identity(inp: Input, identity: str, out: IO[bytes], problems: Problems,
                    on_bytes_first: ByteCounter = no_progress,
                    on_bytes_second: ByteCounter = no_progress) -> FilterResult:
    """Write the lines of ``identity`` and of every identity aliased to it, in input order."""
    graph = AliasGraph()
    graph.add_lines(line for _text, line in inp.lines(problems, on_bytes_first))
    identities = graph.group(identity)
    count = 0
    for text, line in inp.lines(Problems.silenced(), on_bytes_second):
        if belongs(line, identities):
            out.write(text)
            out.write(b"\n")
            count += 1
    return FilterResult(identities=identities, lines=count)
