"""What became of each message a process ran: done, failed (and how), dead-lettered.

``bucketbridge drain`` adds this middleware to its broker to print one line per failure and
exit 1 when any message failed, and to show which site is in hand.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dramatiq.middleware import Middleware

from workers.jobs.base import FAILED_OUTCOMES, forget_last_run, last_run
from workers.middleware.deadletters import describe


class MessageState(StrEnum):
    DONE = "done"  # the job ran and did its work (or had none to do)
    FAILED = "failed"  # the job ran but could not do its work (a bucket error, blocked)
    RETRYING = "retrying"  # it raised; a retry waits in the delay queue
    DEAD = "dead"  # it was dead-lettered


@dataclass
class MessageOutcome:
    message_id: str
    actor: str
    site: str | None
    kwargs: dict[str, Any]
    state: MessageState
    outcome: str | None = None  # the job's outcome (done, budget, bucket_error, …)
    error: str | None = None
    attempts: int = 0

    @property
    def failed(self) -> bool:
        return self.state is not MessageState.DONE

    def as_json(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "actor": self.actor, "site": self.site,
                "kwargs": self.kwargs, "state": self.state, "outcome": self.outcome,
                "error": self.error, "attempts": self.attempts}


class MessageOutcomes(Middleware):
    """Thread-safe record of the messages processed, by message id (a retried message keeps
    its id: its last attempt decides)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, MessageOutcome] = {}
        self._in_hand: dict[str, tuple[str, str | None]] = {}

    def outcomes(self) -> list[MessageOutcome]:
        with self._lock:
            return list(self._by_id.values())

    def in_hand(self) -> list[tuple[str, str | None]]:
        """(actor, site) of each message being processed now."""
        with self._lock:
            return list(self._in_hand.values())

    def before_process_message(self, broker: Any, message: Any) -> None:
        forget_last_run()
        with self._lock:
            self._in_hand[message.message_id] = (message.actor_name, _site(message))

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        run = last_run()
        outcome: str | None
        error: str | None
        if exception is not None:
            state, outcome, error = MessageState.RETRYING, "error", describe(exception)
        elif run is not None and run.outcome in FAILED_OUTCOMES:
            state, outcome, error = MessageState.FAILED, str(run.outcome), run.error
        else:
            state, outcome, error = MessageState.DONE, str(run.outcome) if run else None, None
        with self._lock:
            self._in_hand.pop(message.message_id, None)
            previous = self._by_id.get(message.message_id)
            self._by_id[message.message_id] = MessageOutcome(
                message_id=message.message_id, actor=message.actor_name, site=_site(message),
                kwargs=dict(message.kwargs), state=state, outcome=outcome, error=error,
                attempts=(previous.attempts if previous else 0) + 1)

    after_skip_message = after_process_message

    def after_nack(self, broker: Any, message: Any) -> None:
        with self._lock:
            self._in_hand.pop(message.message_id, None)
            known = self._by_id.get(message.message_id)
            if known is None:  # never ran: no such actor
                known = MessageOutcome(message.message_id, message.actor_name, _site(message),
                                       dict(message.kwargs), MessageState.DEAD,
                                       error=f"no actor {message.actor_name!r}")
                self._by_id[message.message_id] = known
            known.state = MessageState.DEAD


def _site(message: Any) -> str | None:
    return str(message.args[0]) if message.args else None
