"""Reading S3 events from queue message bodies: S3's format, EventBridge's, SNS-wrapped."""

from __future__ import annotations

import orjson
import pytest

from shared.notify.events import MalformedMessage, ObjectCreated, parse

pytestmark = pytest.mark.timeout(10)


def s3_body(*records: tuple[str, str, str]) -> str:
    return orjson.dumps({"Records": [
        {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
         "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}}}
        for name, bucket, key in records]}).decode()


def eventbridge_body(bucket: str, key: str, detail_type: str = "Object Created") -> str:
    return orjson.dumps({"version": "0", "source": "aws.s3", "detail-type": detail_type,
                         "detail": {"bucket": {"name": bucket},
                                    "object": {"key": key, "size": 1}}}).decode()


def test_s3_keys_are_decoded_the_way_s3_encodes_them() -> None:
    # S3 (and moto) encode keys like a form: '+' for a space, %2F for '/', %2B for '+'
    body = s3_body(("ObjectCreated:Put", "bkt", "in%2Facc+ounts%2Fx%2B1.csv"))
    assert parse(body) == [ObjectCreated("bkt", "in/acc ounts/x+1.csv")]


def test_every_created_record_is_read_and_other_kinds_are_not() -> None:
    body = s3_body(("ObjectCreated:CompleteMultipartUpload", "b", "a.csv"),
                   ("ObjectRemoved:Delete", "b", "gone.csv"),
                   ("ObjectCreated:Copy", "b", "c.csv"))
    assert [e.key for e in parse(body)] == ["a.csv", "c.csv"]


def test_eventbridge_object_created_is_accepted_with_its_key_as_it_is() -> None:
    assert parse(eventbridge_body("b", "in/a+b.csv")) == [ObjectCreated("b", "in/a+b.csv")]
    assert parse(eventbridge_body("b", "x.csv", "Object Deleted")) == []


def test_the_test_event_and_an_sns_wrapped_event_are_understood() -> None:
    test_event = '{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}'
    assert parse(test_event) == []
    wrapped = orjson.dumps({"Type": "Notification",
                            "Message": s3_body(("ObjectCreated:Put", "b", "a.csv"))})
    assert parse(wrapped) == [ObjectCreated("b", "a.csv")]


@pytest.mark.parametrize("body", [
    "", "not json", "[]", '{"hello": 1}', '{"Records": 3}', '{"Records": [1]}',
    '{"Records": [{"eventSource": "aws:sqs"}]}', '{"Records": [{"eventSource": "aws:s3"}]}',
    '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}',
    '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", '
    '"s3": {"bucket": {"name": "b"}, "object": {"key": ""}}}]}',
    '{"source": "aws.s3", "detail-type": "Object Created", "detail": {}}',
])
def test_anything_else_is_malformed(body: str) -> None:
    with pytest.raises(MalformedMessage):
        parse(body)
