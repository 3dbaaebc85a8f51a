"""Dead-lettered messages: what they were, every attempt's error, and putting them back.

dramatiq's Redis broker keeps a queue's dead letters in ``<ns>:<queue>.XQ`` (a sorted set of
*broker* ids, scored by when they died) and ``<ns>:<queue>.XQ.msgs`` (broker id → encoded
message), for ``dead_message_ttl``.  A broker id changes at every enqueue; the operator knows
the *message* id (what ``enqueue`` printed, what the worker logged), so that is the id used
here, everywhere.  The encoded message is the one first enqueued, so the worker side keeps a
list of failed attempts beside it (``record_attempt``), keyed by message id; this module
joins the two for operators.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import orjson

from shared.fleet.queues import DEFAULT_NAMESPACE, dead_key, dead_messages_key
from shared.fleet.redisconn import RedisClient, translated
from shared.formats.times import iso_utc

logger = logging.getLogger(__name__)

NOTE_TTL_S = 7 * 24 * 3600
_TRACEBACK_CHARS = 4000
# Options that describe one delivery attempt; a requeued message starts afresh without them.
_ATTEMPT_OPTIONS = ("retries", "traceback", "requeue_timestamp", "redis_message_id", "eta")
NO_ACTOR_ERROR = "no actor {actor!r} in the worker that received it"


def _attempts_key(namespace: str, message_id: str) -> str:
    return f"bucketbridge:dead-letter-attempts:{namespace}:{message_id}"


@dataclass(frozen=True)
class Attempt:
    """One failed delivery of a message."""

    at: str
    error: str
    traceback: str = ""
    worker: str = ""

    @classmethod
    def from_json(cls, raw: bytes) -> Attempt:
        data = orjson.loads(raw)
        return cls(at=str(data.get("at", "")), error=str(data.get("error", "")),
                   traceback=str(data.get("traceback", "")), worker=str(data.get("worker", "")))

    def as_json(self) -> dict[str, str]:
        return {"at": self.at, "error": self.error, "traceback": self.traceback,
                "worker": self.worker}


def record_attempt(client: RedisClient, namespace: str, message_id: str, attempt: Attempt) -> None:
    """Keep the error of one failed attempt of ``message_id`` (called by the worker, for every
    attempt that raised, retried or not)."""
    key = _attempts_key(namespace, message_id)
    body = orjson.dumps({**attempt.as_json(), "traceback": attempt.traceback[-_TRACEBACK_CHARS:]})
    with translated("recording a failed attempt"):
        pipe = client.pipeline(transaction=True)
        pipe.rpush(key, body)
        pipe.expire(key, NOTE_TTL_S)
        pipe.execute()


def has_attempts(client: RedisClient, namespace: str, message_id: str) -> bool:
    with translated("reading failed attempts"):
        return bool(client.llen(_attempts_key(namespace, message_id)))


@dataclass(frozen=True)
class DeadLetter:
    id: str  # the message id: what enqueue printed and the worker logged
    queue: str
    actor: str
    args: list[Any]
    kwargs: dict[str, Any]
    enqueued_at: str
    dead_at: str
    attempts: list[Attempt]
    message: dramatiq.Message[Any] = field(repr=False)
    broker_id: str = field(default="", repr=False)  # the broker's key for this dead letter

    @property
    def site(self) -> str | None:
        return str(self.args[0]) if self.args else None

    @property
    def error(self) -> str | None:
        """The last attempt's error."""
        return self.attempts[-1].error if self.attempts else None

    @property
    def traceback(self) -> str:
        return self.attempts[-1].traceback if self.attempts else ""

    def as_json(self, *, with_tracebacks: bool = False) -> dict[str, Any]:
        attempts = [a.as_json() if with_tracebacks else
                    {k: v for k, v in a.as_json().items() if k != "traceback"}
                    for a in self.attempts]
        return {"id": self.id, "queue": self.queue, "actor": self.actor, "site": self.site,
                "args": self.args, "kwargs": self.kwargs, "enqueued_at": self.enqueued_at,
                "dead_at": self.dead_at, "error": self.error, "attempts": attempts}


class NoSuchLetter(KeyError):
    """No dead letter, or several, match the id (prefix) given."""


class DeadLetterQueue:
    def __init__(self, client: RedisClient, queues: Iterable[str],
                 namespace: str = DEFAULT_NAMESPACE) -> None:
        self.client = client
        self.queues = tuple(queues)
        self.namespace = namespace

    def _xq(self, queue: str) -> str:
        return dead_key(self.namespace, queue)

    def letters(self, *, site: str | None = None, actor: str | None = None) -> list[DeadLetter]:
        """The dead letters of every queue, oldest first; only ``site``'s or ``actor``'s when
        given."""
        with translated("reading dead letters"):
            found = self._letters()
        return [d for d in found if (site is None or d.site == site)
                and (actor is None or d.actor == actor)]

    def _letters(self) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        for queue in self.queues:
            entries: list[tuple[bytes, float]] = self.client.zrange(  # type: ignore[assignment]
                self._xq(queue), 0, -1, withscores=True)
            if not entries:
                continue
            broker_ids = [member.decode() for member, _ in entries]
            bodies: list[bytes | None] = self.client.hmget(  # type: ignore[assignment]
                dead_messages_key(self.namespace, queue), broker_ids)
            decoded = [(broker_id, score, dramatiq.Message.decode(body))
                       for (_, score), broker_id, body in zip(entries, broker_ids, bodies,
                                                              strict=True) if body is not None]
            pipe = self.client.pipeline(transaction=False)
            for _, _, message in decoded:
                pipe.lrange(_attempts_key(self.namespace, message.message_id), 0, -1)
            notes: list[list[bytes]] = pipe.execute()
            for (broker_id, score, message), note in zip(decoded, notes, strict=True):
                out.append(DeadLetter(
                    id=message.message_id, queue=queue, actor=message.actor_name,
                    args=list(message.args), kwargs=dict(message.kwargs),
                    enqueued_at=iso_utc(message.message_timestamp / 1000),
                    dead_at=iso_utc(float(score) / 1000),
                    attempts=[Attempt.from_json(raw) for raw in note], message=message,
                    broker_id=broker_id))
        out.sort(key=lambda d: d.dead_at)
        return out

    def resolve(self, prefixes: Iterable[str]) -> list[DeadLetter]:
        """The dead letters named by full message ids or unique id prefixes, each once;
        ``NoSuchLetter`` names the first prefix that matches none or several."""
        letters = self.letters()
        chosen: dict[str, DeadLetter] = {}
        for prefix in prefixes:
            found = {d.id: d for d in letters if d.id.startswith(prefix)}
            if len(found) != 1:
                raise NoSuchLetter(prefix)
            chosen.update(found)
        return list(chosen.values())

    def requeue(self, letters: Iterable[DeadLetter],
                enqueue: Callable[[dramatiq.Message[Any]], dramatiq.Message[Any]],
                ) -> list[dramatiq.Message[Any]]:
        """Send each message again with its original arguments and message id (so its trail
        of attempts goes on under the id the operator knows), then drop its dead letter.
        Sending first means a crash in between can duplicate a message (jobs are idempotent),
        never lose one."""
        sent = []
        for letter in letters:
            options = {k: v for k, v in letter.message.options.items()
                       if k not in _ATTEMPT_OPTIONS}
            fresh: dramatiq.Message[Any] = dramatiq.Message(
                queue_name=letter.queue, actor_name=letter.actor, args=tuple(letter.args),
                kwargs=letter.kwargs, options=options, message_id=letter.id)
            sent.append(enqueue(fresh))
            self._drop(letter, keep_attempts=True)
        return sent

    def delete(self, letters: Iterable[DeadLetter]) -> int:
        """Drop the given dead letters for good; returns how many."""
        count = 0
        for letter in letters:
            self._drop(letter)
            count += 1
        return count

    def purge(self) -> int:
        """Drop every dead letter; returns how many there were."""
        return self.delete(self.letters())

    def _drop(self, letter: DeadLetter, *, keep_attempts: bool = False) -> None:
        with translated("dropping a dead letter"):
            pipe = self.client.pipeline(transaction=True)
            pipe.zrem(self._xq(letter.queue), letter.broker_id)
            pipe.hdel(dead_messages_key(self.namespace, letter.queue), letter.broker_id)
            if not keep_attempts:
                pipe.delete(_attempts_key(self.namespace, letter.id))
            pipe.execute()
