"""dramatiq's Redis key layout, in one place, and how many messages wait in each queue.

For a queue ``q`` in namespace ``ns``: ``ns:q`` lists messages ready to be fetched, ``ns:q.DQ``
those waiting for a retry's delay, ``ns:q.XQ`` the dead letters (a sorted set of broker ids
scored by when they died) with ``ns:q.XQ.msgs`` (broker id → encoded message).  Messages
already fetched by a worker are in none of them: ``bucketbridge_messages_inprogress`` counts
those.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.fleet.redisconn import RedisClient, translated

DEFAULT_NAMESPACE = "dramatiq"


def ready_key(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}"


def delayed_key(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}.DQ"


def dead_key(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}.XQ"


def dead_messages_key(namespace: str, queue: str) -> str:
    return f"{namespace}:{queue}.XQ.msgs"


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    ready: int
    delayed: int
    dead: int


def queue_depths(client: RedisClient, queues: Iterable[str],
                 namespace: str = DEFAULT_NAMESPACE) -> list[QueueDepth]:
    """The depth of each queue, read in one round trip."""
    names = list(queues)
    with translated("reading queue depths"):
        pipe = client.pipeline(transaction=False)
        for queue in names:
            pipe.llen(ready_key(namespace, queue))
            pipe.llen(delayed_key(namespace, queue))
            pipe.zcard(dead_key(namespace, queue))
        counts = pipe.execute()
    return [QueueDepth(queue, int(counts[3 * i]), int(counts[3 * i + 1]),
                       int(counts[3 * i + 2])) for i, queue in enumerate(names)]
