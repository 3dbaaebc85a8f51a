"""``bucketbridge dlq``: dead letters listed with what they were, requeued, purged."""

from __future__ import annotations

import dramatiq
import orjson
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from shared.fleet.messages import IMPORT_QUEUE
from shared.services import Services
from shared.store.revisions import revision_key
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.conftest import Env, invoke_cli

pytestmark = pytest.mark.timeout(120)


def letters(env: Env) -> list[dict[str, object]]:
    out = invoke_cli(env, "dlq", "list", "--json")
    assert out.returncode == 0, out.stderr
    return list(orjson.loads(out.stdout))


def make_dead_letters(env: Env, s3: S3, services: Services, site: SiteConfig,
                      redis_client: redis.Redis) -> None:
    # A scan that fails permanently: the newest revision of the site is unreadable
    s3.put(services.settings.store_bucket, revision_key("acme", 1), b"not a revision\n")
    assert invoke_cli(env, "enqueue", "scan", "acme").returncode == 0
    # And a message for an actor no worker has
    message: dramatiq.Message[object] = dramatiq.Message(
        queue_name=IMPORT_QUEUE, actor_name="no_such_actor", args=("acme",), kwargs={},
        options={})
    broker = RedisBroker(client=redis_client, middleware=[])
    broker.declare_queue(IMPORT_QUEUE)
    broker.enqueue(message)
    drained = invoke_cli(env, "drain", "--timeout", "60")
    assert drained.returncode == 0, drained.stderr


def test_dead_letters_are_listed_with_actor_site_error_and_time(
        env: Env, s3: S3, services: Services, site: SiteConfig,
        redis_client: redis.Redis) -> None:
    # Given a scan that failed permanently and a message for an unknown actor
    make_dead_letters(env, s3, services, site, redis_client)
    # When an operator lists the dead letters
    found = {str(d["actor"]): d for d in letters(env)}
    # Then each says what it was, for which site, why it failed and since when
    assert set(found) == {"scan", "no_such_actor"}
    scan = found["scan"]
    assert scan["site"] == "acme" and scan["queue"] == "imports"
    assert "RevisionUnreadable" in str(scan["error"]) and "revision 1" in str(scan["error"])
    assert str(scan["dead_at"]).endswith("Z")
    assert "no actor 'no_such_actor'" in str(found["no_such_actor"]["error"])
    human = invoke_cli(env, "dlq", "list")
    assert "RevisionUnreadable" in human.stdout and "acme" in human.stdout


def test_requeue_by_id_prefix_sends_a_fresh_message_and_drops_the_dead_letter(
        env: Env, s3: S3, services: Services, site: SiteConfig,
        redis_client: redis.Redis) -> None:
    make_dead_letters(env, s3, services, site, redis_client)
    scan = next(d for d in letters(env) if d["actor"] == "scan")
    # When the operator fixes the cause and requeues it by an id prefix
    s3.delete(services.settings.store_bucket, revision_key("acme", 1))
    s3.put(site.import_bucket, "accounts.csv", b"Identity,Timestamp,Event\na,1700000000,E\n")
    done = invoke_cli(env, "dlq", "requeue", str(scan["id"])[:12])
    assert done.returncode == 0, done.stderr
    assert "1 message(s) requeued" in done.stdout
    # Then it is queued again, gone from the dead letters, and succeeds this time
    assert [d["actor"] for d in letters(env)] == ["no_such_actor"]
    assert redis_client.llen("dramatiq:imports") == 1
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 0
    assert services.store.latest_number("acme") == 1
    assert [d["actor"] for d in letters(env)] == ["no_such_actor"]


def test_requeue_and_purge_usage_errors(
        env: Env, s3: S3, services: Services, site: SiteConfig,
        redis_client: redis.Redis) -> None:
    make_dead_letters(env, s3, services, site, redis_client)
    for args in (("dlq", "requeue"), ("dlq", "requeue", "nosuchid"),
                 ("dlq", "requeue", "x", "--all"), ("dlq", "purge")):
        result = invoke_cli(env, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("bucketbridge: error:")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert len(letters(env)) == 2  # nothing was touched


def test_requeue_all_and_purge(env: Env, s3: S3, services: Services, site: SiteConfig,
                               redis_client: redis.Redis) -> None:
    make_dead_letters(env, s3, services, site, redis_client)
    requeued = invoke_cli(env, "dlq", "requeue", "--all")
    assert requeued.returncode == 0 and "2 message(s) requeued" in requeued.stdout
    assert letters(env) == []
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 0  # both die again
    assert len(letters(env)) == 2
    purged = invoke_cli(env, "dlq", "purge", "--yes")
    assert purged.returncode == 0 and "2 dead-lettered message(s) purged" in purged.stdout
    assert letters(env) == []
    assert invoke_cli(env, "dlq", "list").stdout.strip() == "no dead-lettered messages"
