"""Helpers for the notification tests: a fresh SQS queue on moto's server, buckets that send
their object-created events to it, and sites registered with their location claims."""

from __future__ import annotations

import uuid
from typing import Any

import boto3

from shared.services import Services
from shared.store.claims import Locations
from shared.store.sites import SiteConfig
from shared.store.sqs import Queue


def sqs_client(endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")


def fresh_queue(endpoint: str) -> Queue:
    """A queue of its own (PurgeQueue has a 60 s cooldown: a new queue per test instead)."""
    client = sqs_client(endpoint)
    url = client.create_queue(QueueName=f"notify-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    return Queue(client, url)


def notify(s3_client: Any, bucket: str, queue: Queue, config_id: str = "bucketbridge",
           prefix: str = "") -> None:
    """Make ``bucket`` send its object-created events to ``queue`` (S3 sends a test event
    when this is saved)."""
    rule: dict[str, Any] = {"Id": config_id, "QueueArn": queue.arn(),
                            "Events": ["s3:ObjectCreated:*"]}
    if prefix:
        rule["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
    s3_client.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [rule]})


def add_site(services: Services, site: str, bucket: str, base: str = "accounts.csv",
             **kw: Any) -> SiteConfig:
    """Register ``site`` as ``sites add`` does: its claims first, then its configuration."""
    config = SiteConfig(site_id=site, import_bucket=bucket, base_filename=base, **kw)
    services.claims.hold(Locations.of(config))
    services.sites.create(config)
    return config
