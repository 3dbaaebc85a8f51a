"""One boto3 session per process, from which every AWS client is built.

A boto3 session loads each service's model once; a client built from a new session loads it
again (about 0.1 s of CPU for S3). A worker builds an S3 client per assumed role every hour, so
the clients share this session. Sessions are not thread-safe: clients are built under a lock.
Credentials given for one client (an assumed role's) are passed to that client only; the
standard chain's credentials are resolved once, by the first client built without them, and
refreshed by botocore where their source expires (a web identity, a container role).
"""

from __future__ import annotations

import threading
from typing import Any

import boto3

_lock = threading.Lock()
_sessions: list[boto3.session.Session] = []  # the process's one session, once built


def _session() -> boto3.session.Session:
    if not _sessions:
        _sessions.append(boto3.session.Session())
    return _sessions[0]


def client(service: str, **kwargs: Any) -> Any:
    """A new boto3 client for ``service`` (``boto3.session.Session.client``'s arguments)."""
    with _lock:
        return _session().client(service, **kwargs)  # type: ignore[call-overload]


def region_name() -> str | None:
    """The region the standard configuration chain names, if any."""
    with _lock:
        return _session().region_name
