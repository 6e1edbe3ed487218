"""Attacks on handler_lib.consumer with what a deferring handler really sent (inline delivery
through the engine's sinks to moto): a payload that looks like an SNS notification or an
EventBridge event, an attribute the consumer reads as a pointer's size, a record handler that
raises with delete_payload=True, a message lambda-defer did not send, and a partial batch
failure under Powertools' BatchProcessor."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from handler_lib import consumer, defer
from handler_lib._dispatch import DISPATCHER
from handler_lib.engine.sinks.claim_check import KEY_PREFIX
from handler_lib.testing import sqs_event
from tests.support.moto_server import client, drain_messages


@pytest.fixture
def inline(aws_resources, moto_endpoint, tmp_path, monkeypatch):
    res = aws_resources()
    bucket = f"payloads-{uuid.uuid4().hex[:12]}"
    s3 = client("s3", moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    monkeypatch.setattr(consumer, "_default_s3", None)
    for name, value in {"AWS_ENDPOINT_URL": moto_endpoint, "DEFER_MODE": "inline",
                        "DEFER_SOCKET": str(tmp_path / "nobody.sock"), "DEFER_LARGE_PAYLOAD_BUCKET": bucket,
                        "DEFER_LARGE_PAYLOAD_THRESHOLD": "1000"}.items():
        monkeypatch.setenv(name, value)
    DISPATCHER.reset()

    def run(body_of):
        """Run a @defer handler that calls ``body_of()``; return what it returned."""
        out = {}

        @defer
        def handler(event, context):
            out["value"] = body_of()

        try:
            handler({}, SimpleNamespace(aws_request_id=f"r-{uuid.uuid4().hex[:6]}"))
        finally:
            DISPATCHER.reset()
        return out["value"]

    return SimpleNamespace(res=res, bucket=bucket, s3=s3, run=run)


def lambda_record(message):
    """A received message in the shape Lambda's SQS event source gives the function."""
    record = sqs_event(message["Body"])["Records"][0]
    record["messageId"] = message["MessageId"]
    record["messageAttributes"] = {
        name: {"stringValue": a.get("StringValue"), "dataType": a["DataType"], "stringListValues": [],
               "binaryListValues": []} for name, a in message.get("MessageAttributes", {}).items()}
    return record


SNS_LOOKALIKE = {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:1:audit",
                 "Message": "the notification being archived", "Timestamp": "2026-01-01T00:00:00Z"}
EVENT_LOOKALIKE = {"version": "0", "id": "e-1", "detail-type": "OrderPlaced", "source": "shop",
                   "detail": {"order": "o-9"}}


@pytest.mark.parametrize("payload", [SNS_LOOKALIKE, EVENT_LOOKALIKE], ids=["sns-notification", "eventbridge-event"])
def test_a_deferred_sqs_payload_that_looks_like_an_envelope_is_read_as_it_was_sent(inline, payload):
    # An audit or forwarding queue: the handler defers an SNS notification or an EventBridge
    # event it received. The consumer must give back that payload and its defer_id, not unwrap it.
    sent_id = inline.run(lambda: defer.sqs(inline.res.queue_url, payload))
    (message,) = drain_messages(inline.res.queue_url, 1)
    found = consumer.record(lambda_record(message))
    assert found.defer_id == sent_id
    assert found.json() == payload
    assert found.source == "sqs"


def test_an_attribute_the_consumer_reads_as_a_pointers_size_is_refused_at_the_call(inline):
    # SQSLargePayloadSize (what the Java extended client wrote) marks a pointer for the consumer,
    # as ExtendedPayloadSize does; a message carrying it must not leave the handler, or its
    # consumer can not read it (ValueError: not a payload pointer).
    with pytest.raises(ValueError, match="SQSLargePayloadSize"):
        inline.run(lambda: defer.sqs(inline.res.queue_url, "plain", attributes={"SQSLargePayloadSize": 5}))
    assert drain_messages(inline.res.queue_url, 0, timeout=0.5) == []


def test_delete_payload_keeps_the_object_when_the_record_handler_raises(inline):
    sent_id = inline.run(lambda: defer.sqs(inline.res.queue_url, {"pad": "x" * 5000}))
    (message,) = drain_messages(inline.res.queue_url, 1)
    key = KEY_PREFIX + sent_id

    @consumer.record_handler(delete_payload=True)
    def handle(record):
        assert len(record.json()["pad"]) == 5000
        raise RuntimeError("the work failed")

    assert inline.s3.list_objects_v2(Bucket=inline.bucket, Prefix=key)["KeyCount"] == 1
    with pytest.raises(RuntimeError, match="the work failed"):
        handle(lambda_record(message))
    assert inline.s3.list_objects_v2(Bucket=inline.bucket, Prefix=key)["KeyCount"] == 1  # redelivery can read it


def test_a_message_lambda_defer_did_not_send_reads_without_an_id(inline):
    sqs = client("sqs")
    sqs.send_message(QueueUrl=inline.res.queue_url, MessageBody='{"from": "elsewhere"}',
                     MessageAttributes={"traceparent": {"DataType": "String", "StringValue": "not-a-traceparent"}})
    (message,) = drain_messages(inline.res.queue_url, 1)
    found = consumer.record(lambda_record(message))
    assert (found.defer_id, found.pointer, found.json()) == (None, None, {"from": "elsewhere"})
    trace = pytest.importorskip("opentelemetry.trace")
    assert not trace.get_current_span(found.otel_context()).get_span_context().is_valid  # no parent, no error


def test_a_partial_batch_failure_deletes_only_the_payloads_of_records_that_succeeded(inline):
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    ids = inline.run(lambda: [defer.sqs(inline.res.queue_url, {"n": n, "pad": "p" * 2000}) for n in range(3)])
    records = [lambda_record(m) for m in drain_messages(inline.res.queue_url, 3)]
    assert len(records) == 3

    @consumer.record_handler(delete_payload=True)
    def handle(record):
        if record.json()["n"] == 1:
            raise ValueError("n=1 fails")
        return record.defer_id

    result = process_partial_response(event={"Records": records}, record_handler=handle,
                                      processor=BatchProcessor(event_type=EventType.SQS),
                                      context=SimpleNamespace(aws_request_id="c"))
    by_id = {consumer.record(r).defer_id: r for r in records}
    assert result["batchItemFailures"] == [{"itemIdentifier": by_id[ids[1]]["messageId"]}]
    left = sorted(o["Key"] for o in inline.s3.list_objects_v2(Bucket=inline.bucket).get("Contents", []))
    assert left == [KEY_PREFIX + ids[1]]


def test_after_dispatcher_reset_inline_delivery_uses_the_new_environments_bucket(inline, moto_endpoint, monkeypatch):
    # the inline engine once outlived DISPATCHER.reset(): its claim check kept the first bucket
    # it was made with, so a test's own bucket stayed empty and "the object was deleted" held
    # vacuously (tests/integration/test_consumer_helper.py).
    inline.run(lambda: defer.sqs(inline.res.queue_url, {"pad": "a" * 2000}))
    second = f"payloads-{uuid.uuid4().hex[:12]}"
    inline.s3.create_bucket(Bucket=second)
    monkeypatch.setenv("DEFER_LARGE_PAYLOAD_BUCKET", second)
    DISPATCHER.reset()
    sent_id = inline.run(lambda: defer.sqs(inline.res.queue_url, {"pad": "b" * 2000}))
    assert [o["Key"] for o in inline.s3.list_objects_v2(Bucket=second)["Contents"]] == [KEY_PREFIX + sent_id]
    assert len(drain_messages(inline.res.queue_url, 2)) == 2
