"""What the fleet is doing for one site right now, from Redis: who holds its leases, which of
its messages wait in the queues, and when the scheduler publishes its next scan and export.

Read-only, for ``bucketbridge status``; the queues are read whole (HSCAN of each queue's
messages), which is cheap for the queue lengths a fleet keeps and is never done by the fleet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dramatiq

from shared.fleet.leases import Holder, lease_holder
from shared.fleet.notices import Notices
from shared.fleet.queues import DEFAULT_NAMESPACE
from shared.fleet.redisconn import RedisClient, translated
from shared.fleet.slots import DEFAULT_PREFIX, SlotClaims, slot_of, slot_start_s
from shared.formats.times import iso_utc


@dataclass(frozen=True)
class Running:
    job: str  # the lease: import or export
    worker: str
    message_id: str
    since: str

    def as_json(self) -> dict[str, str]:
        return {"job": self.job, "worker": self.worker, "message_id": self.message_id,
                "since": self.since}


def running(client: RedisClient, site: str, leases: Iterable[str]) -> list[Running]:
    """The site's jobs running now, one per lease held."""
    out = []
    for job in leases:
        found = lease_holder(client, job, site)
        if found is not None:
            holder: Holder = found[0]
            out.append(Running(job, holder.worker, holder.message_id, holder.since))
    return out


@dataclass(frozen=True)
class Queued:
    message_id: str
    actor: str
    kwargs: dict[str, Any]
    state: str  # "ready", "in flight" (fetched by a worker) or "delayed" (a retry waiting)
    enqueued_at: str

    def as_json(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "actor": self.actor, "kwargs": self.kwargs,
                "state": self.state, "enqueued_at": self.enqueued_at}


def queued(client: RedisClient, site: str, queues: Iterable[str],
           namespace: str = DEFAULT_NAMESPACE) -> list[Queued]:
    """The site's messages in the broker, oldest first."""
    out: list[Queued] = []
    with translated("reading the queues"):
        for queue in queues:
            for name, default_state in ((queue, "in flight"), (f"{queue}.DQ", "delayed")):
                ids: list[bytes] = client.lrange(  # type: ignore[assignment]
                    f"{namespace}:{name}", 0, -1) if default_state == "in flight" else []
                ready = {i.decode() for i in ids}
                for broker_id, body in client.hscan_iter(f"{namespace}:{name}.msgs"):
                    message = dramatiq.Message.decode(body)
                    if not message.args or str(message.args[0]) != site:
                        continue
                    bid = broker_id.decode() if isinstance(broker_id, bytes) else broker_id
                    state = "ready" if bid in ready else default_state
                    out.append(Queued(message.message_id, message.actor_name,
                                      dict(message.kwargs), state,
                                      iso_utc(message.message_timestamp / 1000)))
    out.sort(key=lambda q: q.enqueued_at)
    return out


def next_publication_s(client: RedisClient, job: str, site: str, now_s: float, interval_s: int,
                       prefix: str = DEFAULT_PREFIX) -> float:
    """When the scheduler publishes ``site``'s next ``job`` message: ``now_s`` if the current
    slot was not published yet (the next tick does), else when the next slot begins."""
    slot = slot_of(site, now_s, interval_s)
    key = SlotClaims(client, prefix).key(job, site, slot)
    with translated("reading a scheduler slot"):
        marker = client.get(key)
    if marker is None:
        return now_s
    return slot_start_s(site, slot + 1, interval_s)


def notifications(client: RedisClient, site: str, now_s: float) -> dict[str, Any]:
    """When the listener last matched an S3 notification to ``site``, and how many it matched
    since the start of the previous UTC hour."""
    recent = Notices(client).recent(site, now_s)
    return {"last_at": iso_utc(recent.last_at_s) if recent.last_at_s is not None else None,
            "recent": recent.count, "since": iso_utc(recent.since_s)}
