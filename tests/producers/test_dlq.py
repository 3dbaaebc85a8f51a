"""``bucketbridge dlq``: dead letters found by the message id ``enqueue`` printed and the worker
logged; shown with every attempt's error and the traceback; filtered, requeued with their
original arguments, deleted, purged."""

from __future__ import annotations

import re

import dramatiq
import orjson
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from shared.fleet.messages import IMPORT_QUEUE
from shared.services import Services
from shared.store.ledger import ledger_key
from shared.store.revisions import revision_key
from shared.store.s3 import S3
from shared.store.sites import SiteConfig
from tests.conftest import Env, invoke_cli, run_cli

pytestmark = pytest.mark.timeout(120)

GOOD = b"Identity,Timestamp,Event\na,1700000000,E\n"


def letters(env: Env, *args: str) -> list[dict[str, object]]:
    out = invoke_cli(env, "dlq", "list", "--json", *args)
    assert out.returncode == 0, out.stderr
    return list(orjson.loads(out.stdout))


def enqueue(env: Env, *args: str) -> str:
    """``bucketbridge enqueue ARGS``; the message id it printed."""
    out = invoke_cli(env, "enqueue", *args)
    assert out.returncode == 0, out.stderr
    match = re.search(r"\(message ([0-9a-f-]{36})\)", out.stdout)
    assert match, out.stdout
    return match.group(1)


def break_store(s3: S3, services: Services) -> None:
    """The newest revision of acme unreadable: every scan of it fails permanently."""
    s3.put(services.settings.store_bucket, revision_key("acme", 1), b"not a revision\n")


def make_dead_letters(env: Env, s3: S3, services: Services, redis_client: redis.Redis) -> str:
    """A scan that dies (its id returned) and a message for an actor no worker has."""
    break_store(s3, services)
    scan_id = enqueue(env, "scan", "acme")
    message: dramatiq.Message[object] = dramatiq.Message(
        queue_name=IMPORT_QUEUE, actor_name="no_such_actor", args=("beta",), kwargs={},
        options={})
    broker = RedisBroker(client=redis_client, middleware=[])
    broker.declare_queue(IMPORT_QUEUE)
    broker.enqueue(message)
    drained = invoke_cli(env, "drain", "--timeout", "60")
    assert drained.returncode == 1, drained.stderr  # two messages died
    return scan_id


def test_the_id_enqueue_prints_is_the_one_the_worker_logs_and_dlq_lists_and_takes(
        env: Env, s3: S3, services: Services, site: SiteConfig) -> None:
    # Given a scan that will fail permanently, enqueued by an operator
    break_store(s3, services)
    message_id = enqueue(env, "scan", "acme")
    # When a worker (a real drain process, logging) runs it
    drained = run_cli(env, "-v", "drain", "--timeout", "60")
    # Then the worker's log names the message by that id
    assert drained.returncode == 1
    assert f"message={message_id} actor=scan dead-lettered" in drained.stderr
    # And dlq list shows that id, and dlq show and requeue take it
    assert [d["id"] for d in letters(env)] == [message_id]
    assert invoke_cli(env, "dlq", "show", message_id).returncode == 0
    assert invoke_cli(env, "dlq", "show", message_id[:8]).returncode == 0
    requeued = invoke_cli(env, "dlq", "requeue", message_id, "--json")
    assert requeued.returncode == 0, requeued.stderr
    assert [m["id"] for m in orjson.loads(requeued.stdout)] == [message_id]


def test_dlq_show_has_actor_arguments_site_every_attempts_error_traceback_and_when(
        env: Env, s3: S3, services: Services, site: SiteConfig,
        redis_client: redis.Redis) -> None:
    # Given a scan that died, was requeued and died again
    scan_id = make_dead_letters(env, s3, services, redis_client)
    assert invoke_cli(env, "dlq", "requeue", scan_id).returncode == 0
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 1
    # When an operator looks at it
    shown = invoke_cli(env, "dlq", "show", scan_id)
    as_json = orjson.loads(invoke_cli(env, "dlq", "show", scan_id, "--json").stdout)
    # Then it says what it was, for which site, when, and why each attempt failed
    assert shown.returncode == 0, shown.stderr
    names = {"message", "actor", "site", "arguments", "enqueued", "dead since", "attempts"}
    fields = {k.strip(): v for k, v in (line.split(": ", 1) for line in shown.stdout.splitlines()
                                        if ": " in line) if k.strip() in names}
    assert fields["message"] == scan_id
    assert fields["actor"] == "scan (queue imports)" and fields["site"] == "acme"
    assert fields["attempts"] == "2"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fields["dead since"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fields["enqueued"])
    attempts = [line for line in shown.stdout.splitlines() if line.lstrip().startswith("attempt ")]
    assert len(attempts) == 2
    assert all("RevisionUnreadable: revision 1 of site acme is unreadable" in a for a in attempts)
    assert "traceback of the last attempt:" in shown.stdout
    assert "Traceback (most recent call last)" in shown.stdout
    assert f"requeue with: bucketbridge dlq requeue {scan_id}" in shown.stdout
    assert (as_json["actor"], as_json["site"], as_json["args"], len(as_json["attempts"])) == (
        "scan", "acme", ["acme"], 2)
    assert "Traceback" in as_json["attempts"][-1]["traceback"]
    assert as_json["attempts"][-1]["worker"]


def test_dlq_list_filters_by_site_and_actor(
        env: Env, s3: S3, services: Services, site: SiteConfig,
        redis_client: redis.Redis) -> None:
    make_dead_letters(env, s3, services, redis_client)
    # Then each filter keeps only its own
    assert {str(d["actor"]) for d in letters(env)} == {"scan", "no_such_actor"}
    assert [d["actor"] for d in letters(env, "--site", "acme")] == ["scan"]
    assert [d["site"] for d in letters(env, "--site", "beta")] == ["beta"]
    assert [d["site"] for d in letters(env, "--actor", "scan")] == ["acme"]
    assert letters(env, "--site", "beta", "--actor", "scan") == []
    no_actor = next(d for d in letters(env) if d["actor"] == "no_such_actor")
    assert "no actor 'no_such_actor'" in str(no_actor["error"])
    # And the human list names them, one row each (tab-separated on a pipe)
    human = invoke_cli(env, "dlq", "list", "--site", "acme")
    rows = [line.split("\t") for line in human.stdout.splitlines()]
    assert rows[0] == ["ID", "Actor", "Site", "Arguments", "Attempts", "Dead since", "Error"]
    assert len(rows) == 2 and rows[1][1:3] == ["scan", "acme"]
    assert "RevisionUnreadable" in rows[1][6]


def test_dlq_delete_removes_the_named_letters_only(
        env: Env, s3: S3, services: Services, site: SiteConfig,
        redis_client: redis.Redis) -> None:
    scan_id = make_dead_letters(env, s3, services, redis_client)
    deleted = invoke_cli(env, "dlq", "delete", scan_id[:10])
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.splitlines()[-1] == "1 dead-lettered message(s) deleted"
    assert [d["actor"] for d in letters(env)] == ["no_such_actor"]
    again = invoke_cli(env, "dlq", "delete", scan_id)
    assert again.returncode == 2 and "no single dead letter matches" in again.stderr


def test_requeue_keeps_a_reexports_range_and_message_id(
        env: Env, s3: S3, services: Services, site: SiteConfig,
        redis_client: redis.Redis) -> None:
    # Given an exported revision and a re-export of 1..1 that dies (the site's export ledger
    # became unreadable in between; an unreadable configuration is skipped, not retried)
    s3.put(site.import_bucket, "accounts.csv", GOOD)
    enqueue(env, "scan", "acme")
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 0
    enqueue(env, "export", "acme", "--cutoff", "now")
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 0
    reexport_id = enqueue(env, "reexport", "acme", "--from", "1", "--to", "1")
    store = services.settings.store_bucket
    ledger = s3.head(store, ledger_key("acme"))
    assert ledger is not None
    ledger_body = s3.read_bytes(store, ledger_key("acme"))
    s3.put(store, ledger_key("acme"), b"not a ledger\n", metadata=ledger.metadata)
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 1
    [dead] = letters(env)
    assert (dead["id"], dead["kwargs"]) == (reexport_id, {"first": 1, "last": 1})
    # When the cause is fixed and the letter requeued
    s3.put(store, ledger_key("acme"), ledger_body, metadata=ledger.metadata)
    s3.delete(site.export_bucket or "", "revisions/1.json")
    requeued = invoke_cli(env, "dlq", "requeue", reexport_id)
    assert requeued.returncode == 0, requeued.stderr
    # Then the same message, with the same range, is queued again and does its work
    raw = redis_client.hvals("dramatiq:exports.msgs")
    assert [(m["message_id"], m["kwargs"]) for m in map(orjson.loads, raw)] == [
        (reexport_id, {"first": 1, "last": 1})]
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 0
    assert s3.head(site.export_bucket or "", "revisions/1.json") is not None
    assert letters(env) == []


def test_requeue_and_purge_usage_errors(
        env: Env, s3: S3, services: Services, site: SiteConfig,
        redis_client: redis.Redis) -> None:
    make_dead_letters(env, s3, services, redis_client)
    for args in (("dlq", "requeue"), ("dlq", "requeue", "nosuchid"),
                 ("dlq", "requeue", "x", "--all"), ("dlq", "purge"), ("dlq", "show", "zz"),
                 ("dlq", "requeue", "x", "--site", "acme")):
        result = invoke_cli(env, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("bucketbridge: error:")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert len(letters(env)) == 2  # nothing was touched


def test_requeue_all_of_a_site_and_purge(env: Env, s3: S3, services: Services,
                                         site: SiteConfig, redis_client: redis.Redis) -> None:
    make_dead_letters(env, s3, services, redis_client)
    requeued = invoke_cli(env, "dlq", "requeue", "--all", "--site", "acme")
    assert requeued.returncode == 0 and "1 message(s) requeued" in requeued.stdout
    assert [d["actor"] for d in letters(env)] == ["no_such_actor"]
    assert invoke_cli(env, "drain", "--timeout", "60").returncode == 1  # it dies again
    assert len(letters(env)) == 2
    purged = invoke_cli(env, "dlq", "purge", "--yes")
    assert purged.returncode == 0 and "2 dead-lettered message(s) purged" in purged.stdout
    assert letters(env) == []
    assert invoke_cli(env, "dlq", "list").stdout.strip() == "no dead-lettered messages"
