"""Lets long jobs notice that their worker process is shutting down.

dramatiq calls ``before_worker_shutdown`` as soon as a worker process gets SIGTERM; jobs poll
``requested`` at their checkpoints, commit what they have and return, well within the grace
period, instead of being interrupted at an arbitrary point.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from dramatiq.middleware import Middleware

logger = logging.getLogger(__name__)


class GracefulShutdown(Middleware):
    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self) -> None:
        """Ask running jobs to checkpoint and return (``drain`` on Ctrl-C)."""
        self._event.set()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        logger.info("shutdown requested: running jobs will checkpoint and return")
        self._event.set()
