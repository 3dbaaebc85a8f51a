"""moto's server as the tests run it: what it answers is unchanged, two costs per request that
are not S3's are removed, one race that real SQS does not have is closed, and one condition
that S3 checks and moto ignores is checked."""

from __future__ import annotations

import logging
import threading
import urllib.parse
from typing import Any

import moto.backends
from moto.s3.exceptions import PreconditionFailed
from moto.s3.responses import S3Response
from moto.sqs.models import Queue, SQSBackend

_tuned: list[bool] = []


def tune_moto() -> None:
    """Once per process, before the server starts:

    - moto lists its own package directory on every request to match it to a service (about a
      seventh of its time): the list is read once;
    - werkzeug logs every request line at INFO: only warnings (``tests.counting`` turns the
      request log on where a test counts requests);
    - two ``ReceiveMessage`` calls at once can both take the same visible message in moto,
      where SQS hands a message to one receiver: the taking is serialised (a long poll waits
      outside the lock);
    - ``CopyObject`` with ``x-amz-copy-source-if-match`` copies only while the source has that
      ETag, as S3 does (moto checks only ``…-if-none-match``)."""
    if _tuned:
        return
    _tuned.append(True)
    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    taking = threading.Lock()
    receive, wait = SQSBackend.receive_message, Queue.wait_for_messages

    def receive_one_at_a_time(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
        with taking:
            return receive(self, *args, **kwargs)

    def wait_unlocked(self: Queue, timeout: int) -> None:
        taking.release()
        try:
            wait(self, timeout)
        finally:
            taking.acquire()

    SQSBackend.receive_message = receive_one_at_a_time
    Queue.wait_for_messages = wait_unlocked

    copy_object = S3Response.copy_object

    def copy_object_if_match(self: S3Response) -> Any:
        wanted = self.headers.get("x-amz-copy-source-if-match")
        if wanted is not None:
            source = urllib.parse.unquote(urllib.parse.urlsplit(
                self.headers["x-amz-copy-source"]).path).lstrip("/")
            bucket, _, key = source.partition("/")
            found = self.backend.get_object(bucket, key)
            if found is not None and wanted.strip('"') != found.etag.strip('"'):
                raise PreconditionFailed(failed_condition="x-amz-copy-source-If-Match")
        return copy_object(self)

    S3Response.copy_object = copy_object_if_match
