"""Customer text made safe for a terminal or a log line.  Pure.

Key names, cell values and the reasons that quote them come from customers; written raw, an
ANSI/OSC escape in a key (``ESC ] 0 ; … BEL``) retitles or repaints the operator's terminal,
and a newline forges a log line.  ``printable`` escapes every control character (C0, DEL,
C1) and the bidirectional overrides that reorder what a reader sees, as Python writes them
(``\\x1b``, ``\\n``, ``\\u202e``); everything else, any script or emoji, stays as it is.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control characters and bidi overrides escaped."""
    return _UNSAFE.sub(_escape, text)


def has_unsafe(text: str) -> bool:
    """Whether ``text`` holds a character ``printable`` would escape."""
    return _UNSAFE.search(text) is not None
