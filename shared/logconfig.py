"""Log format for every bucketbridge process (worker, scheduler, CLI): one line per event, UTC.

``BUCKETBRIDGE_LOG_FORMAT=text`` (the default) writes
``2024-05-01T12:00:00Z INFO [PID 12] shared.imports.scan: site=acme …``; ``json`` writes one
JSON object per line (python-json-logger) with ``time``, ``level``, ``logger``, ``pid``,
``message`` and, while a message is processed, its ``site``, ``message_id`` and ``job_kind``
as fields of their own (``log_context``), so a log pipeline can filter on them.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from shared.formats.printable import printable

# Libraries whose INFO lines would drown ours (one line per HTTP request).
NOISY_LOGGERS = ("botocore", "boto3", "urllib3", "werkzeug")
TEXT_FORMAT = "%(asctime)sZ %(levelname)s [PID %(process)d] %(name)s: %(message)s"
JSON_FIELDS = ("asctime", "levelname", "name", "process", "message")
JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
CONTEXT_FIELDS = ("site", "message_id", "job_kind")

_context: ContextVar[dict[str, str] | None] = ContextVar("bucketbridge_log_context",
                                                         default=None)


def set_log_context(**fields: str | None) -> None:
    """Fields (``CONTEXT_FIELDS``) added to every record logged by this thread from now on."""
    _context.set({k: v for k, v in fields.items() if v is not None})


def clear_log_context() -> None:
    _context.set(None)


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    token = _context.set({k: v for k, v in fields.items() if v is not None})
    try:
        yield
    finally:
        _context.reset(token)


class PrintableFilter(logging.Filter):
    """Escapes control characters in each record's message: a customer's key name or cell
    quoted in a log line can neither forge a line (a newline) nor reach the terminal that
    tails the log (an ANSI or OSC escape).  Tracebacks keep their lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = printable(message)
        if safe != message:
            record.msg, record.args = safe, None
        return True


class ContextFilter(logging.Filter):
    """Copies the thread's log context onto each record (fields a record has already win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def make_formatter(log_format: str) -> logging.Formatter:
    formatter: logging.Formatter
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        formatter = JsonFormatter(list(JSON_FIELDS), datefmt=DATE_FORMAT + "Z",
                                  rename_fields=dict(JSON_NAMES), json_ensure_ascii=False)
    else:
        formatter = logging.Formatter(TEXT_FORMAT, datefmt=DATE_FORMAT)
    formatter.converter = time.gmtime
    return formatter


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """bucketbridge's own handler, told apart from any other (a test runner's)."""


def configure_logging(level: int = logging.INFO, log_format: str = "text",
                      *, force: bool = False) -> None:
    """Log ``level`` and up to stderr in ``log_format``.  A handler configured earlier by this
    function is replaced (a forked process writes to its own stderr); another's handler (a
    test runner's) is left alone, and then none is added unless ``force``."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    if force or not root.handlers:
        handler = _Handler(sys.stderr)
        handler.setFormatter(make_formatter(log_format))
        handler.addFilter(ContextFilter())
        handler.addFilter(PrintableFilter())
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def context_fields() -> dict[str, Any]:
    """The current thread's log context (for tests and diagnostics)."""
    return dict(_context.get() or {})
