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
