"""How many messages wait in the broker's queues, read straight from dramatiq's Redis keys.

``<ns>:<queue>`` lists messages ready to be fetched, ``<ns>:<queue>.DQ`` those waiting for a
retry's delay, ``<ns>:<queue>.XQ`` the dead letters.  Messages already fetched by a worker are in
none of them: ``bucketbridge_messages_inprogress`` counts those.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import redis


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    ready: int
    delayed: int
    dead: int


def queue_depths(client: redis.Redis, queues: Iterable[str],
                 namespace: str = "dramatiq") -> list[QueueDepth]:
    names = list(queues)
    pipe = client.pipeline(transaction=False)
    for queue in names:
        pipe.llen(f"{namespace}:{queue}")
        pipe.llen(f"{namespace}:{queue}.DQ")
        pipe.zcard(f"{namespace}:{queue}.XQ")
    counts = pipe.execute()
    return [QueueDepth(queue, int(counts[3 * i]), int(counts[3 * i + 1]),
                       int(counts[3 * i + 2])) for i, queue in enumerate(names)]
