"""moto's server as the tests run it: what it answers is unchanged, two costs per request that
are not S3's are removed, and one race that real SQS does not have is closed."""

from __future__ import annotations

import logging
import threading
from typing import Any

import moto.backends
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
      outside the lock)."""
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
