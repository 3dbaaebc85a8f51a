"""What a bucket needs to send a site's new files to the listener's queue.  Pure: no I/O.

A site gets one queue configuration in its import bucket's notification configuration,
``bucketbridge-<site>``: every ``s3:ObjectCreated:*`` event of a key under the site's list
prefix (folder + stem) goes to the queue.  Claims already keep two sites' prefixes in one
folder from overlapping (``shared.formats.locations``), so the configurations of several sites
in one bucket never overlap, which S3 would refuse.  Keys under the prefix that are not the
site's files (other extensions, deeper folders) are dropped by the listener.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from shared.store.sites import SiteConfig

CONFIG_ID_PREFIX = "bucketbridge-"
EVENTS = ["s3:ObjectCreated:*"]
_SQS_HOST = re.compile(r"^sqs[.-]([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
# What S3 answers beside the configuration itself.
_NOT_CONFIGURATION = ("ResponseMetadata",)


def config_id(site: str) -> str:
    return f"{CONFIG_ID_PREFIX}{site}"


def queue_arn_of(queue_url: str) -> str | None:
    """The ARN of an AWS queue URL (``https://sqs.<region>.amazonaws.com/<account>/<name>``),
    or ``None`` for another endpoint (ask the queue instead)."""
    parts = urllib.parse.urlsplit(queue_url)
    host = _SQS_HOST.match(parts.netloc)
    path = parts.path.strip("/").split("/")
    if host is None or len(path) != 2:
        return None
    partition = "aws-cn" if host.group(2) else "aws"
    return f"arn:{partition}:sqs:{host.group(1)}:{path[0]}:{path[1]}"


def queue_configuration(site: SiteConfig, queue_arn: str) -> dict[str, Any]:
    """The site's entry of ``QueueConfigurations``."""
    return {"Id": config_id(site.site_id), "QueueArn": queue_arn, "Events": list(EVENTS),
            "Filter": {"Key": {"FilterRules": [
                {"Name": "prefix", "Value": site.pattern.list_prefix}]}}}


def merged(existing: dict[str, Any], rule: dict[str, Any]) -> dict[str, Any]:
    """``existing`` (a bucket's whole notification configuration, as S3 returned it) with
    ``rule`` added, or in place of the queue configuration with its ``Id``; everything else
    (topics, functions, EventBridge, other queues) kept as it is."""
    out = {k: v for k, v in existing.items() if k not in _NOT_CONFIGURATION}
    queues = [q for q in out.get("QueueConfigurations", []) if q.get("Id") != rule["Id"]]
    out["QueueConfigurations"] = [*queues, rule]
    return out


def queue_policy(queue_arn: str, buckets: list[str]) -> dict[str, Any]:
    """The queue's access policy that lets S3 send the events of ``buckets`` to it."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "bucketbridge-s3-notifications",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnLike": {"aws:SourceArn": [f"arn:aws:s3:::{b}" for b in buckets]}},
    }]}
