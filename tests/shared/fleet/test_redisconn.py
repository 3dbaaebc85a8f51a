"""Redis errors are translated at the fleet's adapters: nothing above sees a redis exception."""

from __future__ import annotations

import pytest

from shared.errors import RedisUnavailable
from shared.fleet.deadletters import DeadLetterQueue
from shared.fleet.messages import QUEUES, scan_message
from shared.fleet.publisher import Publisher
from shared.fleet.queues import queue_depths
from shared.fleet.redisconn import check, connect
from shared.fleet.slots import SlotClaims

pytestmark = pytest.mark.timeout(30)

NOWHERE = "redis://127.0.0.1:1/0"


@pytest.mark.parametrize("call", [
    check,
    lambda r: Publisher.for_redis(r).publish(scan_message("acme")),
    lambda r: queue_depths(r, QUEUES),
    lambda r: DeadLetterQueue(r, QUEUES).letters(),
    lambda r: SlotClaims(r).claim("k", 0.0, 10),
], ids=["ping", "publish", "queue-depths", "dead-letters", "slot-claim"])
def test_an_unreachable_redis_is_redis_unavailable_naming_the_address(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RedisUnavailable, match=r"^Redis: .*127\.0\.0\.1:1"):
        call(connect(NOWHERE))


def test_a_published_message_keeps_its_id(redis_url: str) -> None:
    message = scan_message("acme")
    assert Publisher.for_redis(connect(redis_url)).publish(message).message_id == \
        message.message_id
