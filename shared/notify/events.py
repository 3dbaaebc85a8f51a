"""S3 object-created events, read from the body of a queue message.  Pure: no I/O.

Three shapes are accepted:

- S3's own notification (``{"Records": [{"eventSource": "aws:s3", "eventName":
  "ObjectCreated:Put", "s3": {"bucket": {"name": …}, "object": {"key": …}}}]}``), whose keys
  are URL-encoded the way HTML forms are (``+`` for a space, ``%2F`` for ``/``);
- EventBridge's ``Object Created`` event (``{"source": "aws.s3", "detail-type": "Object
  Created", "detail": {"bucket": {"name": …}, "object": {"key": …}}}``), whose keys are not
  encoded;
- either of them wrapped in an SNS notification (``{"Type": "Notification", "Message": …}``),
  for buckets that fan out through a topic.

S3's ``s3:TestEvent`` (sent when a notification configuration is saved) and events of other
kinds (removals, restores) carry no new file: they are read as no events.  Anything else is
``MalformedMessage``.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

import orjson

from shared.errors import PermanentError

_CREATED_PREFIX = "ObjectCreated:"
_EVENTBRIDGE_CREATED = "Object Created"


class MalformedMessage(PermanentError):
    """A queue message that is no S3 event: counted, logged and deleted."""


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str  # decoded: the object's real key


def parse(body: str | bytes) -> list[ObjectCreated]:
    """The object-created events of one message body (none for a test event or an event of
    another kind); ``MalformedMessage`` if it is not an S3 event at all."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedMessage("not JSON") from None
    if not isinstance(doc, dict):
        raise MalformedMessage("not a JSON object")
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return parse(doc["Message"])
    try:
        if "Records" in doc:
            return [e for e in map(_s3_record, _list(doc["Records"])) if e is not None]
        if doc.get("Event") == "s3:TestEvent":
            return []
        if doc.get("source") == "aws.s3" and "detail-type" in doc:
            if doc["detail-type"] != _EVENTBRIDGE_CREATED:
                return []
            detail = doc["detail"]
            return [ObjectCreated(_text(detail["bucket"]["name"]),
                                  _text(detail["object"]["key"]))]
    except (KeyError, TypeError) as exc:
        raise MalformedMessage(f"an S3 event without {exc}") from None
    raise MalformedMessage("neither an S3 notification nor an EventBridge S3 event")


def _s3_record(record: Any) -> ObjectCreated | None:
    if not isinstance(record, dict):
        raise MalformedMessage("a record that is not a JSON object")
    if record.get("eventSource") != "aws:s3":
        raise MalformedMessage(f"a record from {record.get('eventSource')!r}, not aws:s3")
    name = record.get("eventName")
    if not isinstance(name, str):
        raise MalformedMessage("a record without an eventName")
    if not name.startswith(_CREATED_PREFIX):
        return None
    s3 = record["s3"]
    key = urllib.parse.unquote_plus(_text(s3["object"]["key"]))
    return ObjectCreated(_text(s3["bucket"]["name"]), key)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedMessage("Records is not a list")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedMessage("a bucket or key that is not a non-empty string")
    return value
