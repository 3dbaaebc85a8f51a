"""``bucketbridge sites notifications``: the configuration printed, applied (merged with what
the bucket has), and the queue policy; on moto's S3 and SQS."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.notify.setup import queue_arn_of
from shared.services import Services
from shared.store.s3 import S3
from shared.store.sqs import Queue
from tests.conftest import Env, invoke_cli
from tests.notifications import add_site, fresh_queue

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def queue(s3_endpoint: str) -> Queue:
    return fresh_queue(s3_endpoint)


def cli(env: Env, queue: Queue, *args: str) -> Any:
    return invoke_cli(env, "sites", "notifications", *args,
                      BUCKETBRIDGE_NOTIFY_QUEUE_URL=queue.url, AWS_ENDPOINT_URL_SQS=env.endpoint)


def test_the_printed_configuration_sends_the_sites_files_to_the_queue(
        env: Env, services: Services, import_bucket: str, queue: Queue) -> None:
    add_site(services, "acme", import_bucket, base="in/accounts.csv")
    result = cli(env, queue, "acme")
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout) == {"QueueConfigurations": [{
        "Id": "bucketbridge-acme", "QueueArn": queue.arn(), "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/accounts"}]}}}]}


def test_apply_merges_with_the_buckets_configuration_and_can_be_repeated(
        env: Env, services: Services, s3: S3, import_bucket: str, queue: Queue) -> None:
    # Given a bucket that already sends other events somewhere
    other = fresh_queue(env.endpoint)
    theirs = {"Id": "their-logs", "QueueArn": other.arn(), "Events": ["s3:ObjectRemoved:*"]}
    s3.client.put_bucket_notification_configuration(
        Bucket=import_bucket, NotificationConfiguration={"QueueConfigurations": [theirs]})
    add_site(services, "acme", import_bucket)
    add_site(services, "beta", import_bucket, base="orders.csv")
    # When both sites' configurations are applied, one of them twice
    for site in ("acme", "beta", "acme"):
        result = cli(env, queue, site, "--apply")
        assert result.returncode == 0, result.stderr
    # Then the bucket holds theirs and one of each site's
    found = s3.client.get_bucket_notification_configuration(Bucket=import_bucket)
    ids = sorted(q["Id"] for q in found["QueueConfigurations"])
    assert ids == ["bucketbridge-acme", "bucketbridge-beta", "their-logs"]
    # And an upload of a site's file reaches the queue
    s3.put(import_bucket, "orders-1.csv", b"x")
    bodies = [m.body for m in queue.receive(wait_s=0)]
    assert any("orders-1.csv" in b for b in bodies)


def test_the_queue_policy_lets_the_sites_bucket_send_to_the_queue(
        env: Env, services: Services, import_bucket: str, queue: Queue) -> None:
    add_site(services, "acme", import_bucket)
    result = cli(env, queue, "acme", "--queue-policy")
    assert result.returncode == 0, result.stderr
    statement = orjson.loads(result.stdout)["Statement"][0]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == queue.arn()
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == [f"arn:aws:s3:::{import_bucket}"]


def test_without_a_queue_or_a_site_it_is_a_one_line_usage_error(
        env: Env, services: Services, import_bucket: str, queue: Queue) -> None:
    add_site(services, "acme", import_bucket)
    result = invoke_cli(env, "sites", "notifications", "acme")
    assert result.returncode == 2
    assert "BUCKETBRIDGE_NOTIFY_QUEUE_URL is not set" in result.stderr
    result = cli(env, queue, "nobody")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1


def test_an_aws_queue_url_gives_its_arn_without_a_request() -> None:
    assert queue_arn_of("https://sqs.eu-west-1.amazonaws.com/123456789012/bb-notify") \
        == "arn:aws:sqs:eu-west-1:123456789012:bb-notify"
    assert queue_arn_of("http://127.0.0.1:5000/123456789012/q") is None
