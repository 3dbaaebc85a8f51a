"""The SQS adapter: the only module that talks to boto3 for the notification queue.

Every botocore error is translated here (``QueueError`` when the queue is missing or denied,
``QueueUnavailable`` for anything worth trying again), so nothing above this module sees a
``ClientError``.  The endpoint comes from the standard chain (``AWS_ENDPOINT_URL_SQS``); the
region from the queue's URL when it names one (``sqs.<region>.amazonaws.com``).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, NoReturn

import botocore.exceptions
from botocore.config import Config
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from shared.errors import QueueError, QueueUnavailable
from shared.store import awssession

# SQS's limits: at most 10 messages per receive and per delete batch, a wait of 0-20 s.
MAX_BATCH = 10
MAX_WAIT_S = 20

_REGION_HOST = re.compile(r"^sqs[.-]([a-z0-9-]+)\.amazonaws\.com")
_MISSING_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",
                            "NonExistentQueue"})
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "InvalidClientTokenId",
                           "SignatureDoesNotMatch", "UnrecognizedClientException",
                           "InvalidAccessKeyId", "KMS.AccessDeniedException"})
_TRANSPORT_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.HTTPClientError,
    Urllib3HTTPError,
    ConnectionError,
)


def translate(exc: Exception, queue_url: str, what: str) -> NoReturn:
    """Raise the bucketbridge error that ``exc`` (from boto3) means; call inside ``except``."""
    where = f"queue {queue_url} ({what})"
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _MISSING_CODES:
            raise QueueError(f"{where}: the queue does not exist") from None
        if code in _DENIED_CODES or status == 403:
            raise QueueError(f"{where}: access denied ({code or status})") from None
        if status >= 500 or status == 429 or "Throttl" in code or code == "RequestThrottled":
            raise QueueUnavailable(f"{where}: SQS error {code or status}") from None
        raise QueueError(f"{where}: SQS refused the request: {code} "
                         f"{error.get('Message', '')}".rstrip()) from None
    if isinstance(exc, _TRANSPORT_ERRORS):
        raise QueueUnavailable(f"{where}: SQS unreachable: {type(exc).__name__}") from None
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        raise QueueError(f"{where}: no AWS credentials found") from None
    raise exc


def region_of(queue_url: str) -> str | None:
    """The AWS region a queue URL names (``https://sqs.eu-west-1.amazonaws.com/…``)."""
    found = _REGION_HOST.match(urllib.parse.urlsplit(queue_url).netloc)
    return found.group(1) if found else None


def make_sqs_client(queue_url: str, *, wait_s: int = MAX_WAIT_S) -> Any:
    """A boto3 SQS client for ``queue_url``, whose reads outlast a long poll of ``wait_s``."""
    config = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5,
                    read_timeout=wait_s + 10)
    return awssession.client("sqs", region_name=region_of(queue_url), config=config)


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt_handle: str
    body: str
    sent_at_s: float | None  # SQS's SentTimestamp: when the message entered the queue


class Queue:
    """One SQS queue: receive, delete, and the attributes set-up needs."""

    def __init__(self, client: Any, url: str) -> None:
        self.client = client
        self.url = url

    def receive(self, *, max_messages: int = MAX_BATCH, wait_s: int = MAX_WAIT_S,
                visibility_timeout_s: int | None = None) -> list[QueueMessage]:
        """Up to ``max_messages`` messages, waiting up to ``wait_s`` for the first; each stays
        invisible to other receivers for ``visibility_timeout_s`` (the queue's own default if
        ``None``) and comes back unless deleted."""
        kwargs: dict[str, Any] = {"QueueUrl": self.url, "WaitTimeSeconds": wait_s,
                                  "MaxNumberOfMessages": min(max_messages, MAX_BATCH),
                                  "MessageSystemAttributeNames": ["SentTimestamp"]}
        if visibility_timeout_s is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout_s
        try:
            r = self.client.receive_message(**kwargs)
        except Exception as exc:
            translate(exc, self.url, "receive")
        out = []
        for m in r.get("Messages", []):
            sent = m.get("Attributes", {}).get("SentTimestamp")
            out.append(QueueMessage(str(m["MessageId"]), str(m["ReceiptHandle"]),
                                    str(m.get("Body", "")),
                                    int(sent) / 1000 if sent and sent.isdigit() else None))
        return out

    def delete(self, messages: list[QueueMessage]) -> None:
        """Delete ``messages`` (in batches of ten); ``QueueUnavailable`` if any was not deleted
        (it comes back after its visibility timeout: its work is idempotent)."""
        failed = 0
        for start in range(0, len(messages), MAX_BATCH):
            chunk = messages[start:start + MAX_BATCH]
            entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle}
                       for i, m in enumerate(chunk)]
            try:
                r = self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
            except Exception as exc:
                translate(exc, self.url, "delete")
            failed += len(r.get("Failed", []))
        if failed:
            raise QueueUnavailable(f"queue {self.url}: {failed} message(s) were not deleted")

    def send(self, body: str) -> str:
        """Send one message (tests and benchmarks inject events with it); its id."""
        try:
            r = self.client.send_message(QueueUrl=self.url, MessageBody=body)
        except Exception as exc:
            translate(exc, self.url, "send")
        return str(r["MessageId"])

    def arn(self) -> str:
        """The queue's ARN, which a bucket's notification configuration names."""
        try:
            r = self.client.get_queue_attributes(QueueUrl=self.url,
                                                 AttributeNames=["QueueArn"])
        except Exception as exc:
            translate(exc, self.url, "reading its ARN")
        return str(r["Attributes"]["QueueArn"])
