"""Dead-lettered messages: what they were, why they failed, and putting them back.

dramatiq's Redis broker keeps a queue's dead letters in ``<ns>:<queue>.XQ`` (a sorted set of
message ids, scored by when they died) and ``<ns>:<queue>.XQ.msgs`` (id → encoded message), for
``dead_message_ttl``.  The encoded message is the one first enqueued, so the worker side writes
a note beside it (``record_failure``) with the error; this module joins the two for operators.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


def _note_key(namespace: str, redis_id: str) -> str:
    return f"bucketbridge:dead-letter-note:{namespace}:{redis_id}"


def record_failure(client: RedisClient, namespace: str, message: dramatiq.Message[Any],
                   now_s: float) -> None:
    """Keep the error of a message that is being dead-lettered (called by the worker)."""
    redis_id = message.options.get("redis_message_id")
    if not redis_id:
        return
    trace = str(message.options.get("traceback") or "")
    last = [line for line in trace.strip().splitlines() if line.strip()]
    error = last[-1].strip() if last else f"no actor {message.actor_name!r} in the worker " \
        "that received it, or it failed without an exception"
    note = {"error": error, "traceback": trace[-_TRACEBACK_CHARS:], "failed_at": iso_utc(now_s),
            "attempts": int(message.options.get("retries", 0) or 0)}
    with translated("recording a dead letter's error"):
        client.set(_note_key(namespace, redis_id), orjson.dumps(note), ex=NOTE_TTL_S)


@dataclass(frozen=True)
class DeadLetter:
    id: str  # the broker's id of this dead letter; what requeue takes
    queue: str
    actor: str
    args: list[Any]
    kwargs: dict[str, Any]
    dead_at: str
    error: str | None
    attempts: int | None
    message: dramatiq.Message[Any]

    @property
    def site(self) -> str | None:
        return str(self.args[0]) if self.args else None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "queue": self.queue, "actor": self.actor, "site": self.site,
                "args": self.args, "kwargs": self.kwargs, "dead_at": self.dead_at,
                "error": self.error, "attempts": self.attempts}


class DeadLetterQueue:
    def __init__(self, client: RedisClient, queues: Iterable[str],
                 namespace: str = DEFAULT_NAMESPACE) -> None:
        self.client = client
        self.queues = tuple(queues)
        self.namespace = namespace

    def _xq(self, queue: str) -> str:
        return dead_key(self.namespace, queue)

    def letters(self) -> list[DeadLetter]:
        """Every dead letter of every queue, oldest first."""
        with translated("reading dead letters"):
            return self._letters()

    def _letters(self) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        for queue in self.queues:
            entries: list[tuple[bytes, float]] = self.client.zrange(  # type: ignore[assignment]
                self._xq(queue), 0, -1, withscores=True)
            if not entries:
                continue
            ids = [member.decode() for member, _ in entries]
            bodies: list[bytes | None] = self.client.hmget(  # type: ignore[assignment]
                dead_messages_key(self.namespace, queue), ids)
            notes: list[bytes | None] = self.client.mget(  # type: ignore[assignment]
                [_note_key(self.namespace, i) for i in ids])
            for (_, score), redis_id, body, note in zip(entries, ids, bodies, notes, strict=True):
                if body is None:
                    continue
                message = dramatiq.Message.decode(body)
                info = orjson.loads(note) if note else {}
                out.append(DeadLetter(
                    id=redis_id, queue=queue, actor=message.actor_name,
                    args=list(message.args), kwargs=dict(message.kwargs),
                    dead_at=iso_utc(float(score) / 1000), error=info.get("error"),
                    attempts=info.get("attempts"), message=message))
        out.sort(key=lambda d: d.dead_at)
        return out

    def resolve(self, prefixes: Iterable[str]) -> list[DeadLetter]:
        """The dead letters named by full ids or unique id prefixes; ``KeyError`` names the
        first one that matches none or several."""
        letters = self.letters()
        chosen: list[DeadLetter] = []
        for prefix in prefixes:
            found = [d for d in letters if d.id.startswith(prefix)]
            if len(found) != 1:
                raise KeyError(prefix)
            chosen.append(found[0])
        return chosen

    def requeue(self, letters: Iterable[DeadLetter],
                enqueue: Callable[[dramatiq.Message[Any]], dramatiq.Message[Any]],
                ) -> list[dramatiq.Message[Any]]:
        """Send each message again as a fresh delivery, then drop its dead letter.  Sending
        first means a crash in between can duplicate a message (jobs are idempotent), never
        lose one."""
        sent = []
        for letter in letters:
            options = {k: v for k, v in letter.message.options.items()
                       if k not in _ATTEMPT_OPTIONS}
            fresh: dramatiq.Message[Any] = dramatiq.Message(
                queue_name=letter.queue, actor_name=letter.actor, args=tuple(letter.args),
                kwargs=letter.kwargs, options=options)
            sent.append(enqueue(fresh))
            self._drop(letter.queue, letter.id)
        return sent

    def purge(self) -> int:
        """Drop every dead letter; returns how many there were."""
        letters = self.letters()
        for letter in letters:
            self._drop(letter.queue, letter.id)
        return len(letters)

    def _drop(self, queue: str, redis_id: str) -> None:
        with translated("dropping a dead letter"):
            pipe = self.client.pipeline(transaction=True)
            pipe.zrem(self._xq(queue), redis_id)
            pipe.hdel(dead_messages_key(self.namespace, queue), redis_id)
            pipe.delete(_note_key(self.namespace, redis_id))
            pipe.execute()
