"""``bucketbridge listen``'s start: a missing or bad queue setting is one line, never a loop."""

from __future__ import annotations

import pytest

from tests.conftest import Env, invoke_cli

pytestmark = pytest.mark.timeout(60)


def test_without_a_queue_the_listener_refuses_to_start_in_one_line(env: Env) -> None:
    result = invoke_cli(env, "listen")
    assert result.returncode == 2
    assert result.stderr.strip() == ("bucketbridge: error: BUCKETBRIDGE_NOTIFY_QUEUE_URL is not "
                                     "set: name the SQS queue that receives the buckets' "
                                     "object-created events")


def test_a_queue_url_that_is_no_url_is_a_settings_error(env: Env) -> None:
    result = invoke_cli(env, "listen", BUCKETBRIDGE_NOTIFY_QUEUE_URL="my-queue")
    assert result.returncode == 2
    assert "invalid BUCKETBRIDGE_NOTIFY_QUEUE_URL 'my-queue'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_queue_that_does_not_exist_stops_the_listener_in_one_line(env: Env) -> None:
    result = invoke_cli(env, "listen", AWS_ENDPOINT_URL_SQS=env.endpoint,
                        BUCKETBRIDGE_NOTIFY_QUEUE_URL=f"{env.endpoint}/123456789012/nope")
    assert result.returncode == 1
    assert "the queue does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_wait_longer_than_sqs_allows_is_a_settings_error(env: Env) -> None:
    result = invoke_cli(env, "listen", BUCKETBRIDGE_NOTIFY_WAIT_S="30")
    assert result.returncode == 2
    assert "BUCKETBRIDGE_NOTIFY_WAIT_S must be at most 20, got 30" in result.stderr


def test_the_listener_checks_the_environment_before_it_starts(env: Env) -> None:
    # Given a store bucket that does not exist (the conditional-write check cannot pass)
    result = invoke_cli(env, "listen", BUCKETBRIDGE_STORE_BUCKET="no-such-store-bucket",
                        AWS_ENDPOINT_URL_SQS=env.endpoint,
                        BUCKETBRIDGE_NOTIFY_QUEUE_URL=f"{env.endpoint}/123456789012/q")
    assert result.returncode == 1
    assert result.stderr.startswith("bucketbridge: error: the listener refuses to start: ")
    assert len(result.stderr.strip().splitlines()) == 1
