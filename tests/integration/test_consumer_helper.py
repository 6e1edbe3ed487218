"""handler_lib.consumer on what a deferring handler really sent (inline delivery in this
process, through the engine's sinks, to moto): claim-check pointers resolved from S3 on SQS,
SNS raw and in SNS's envelope, SNS's own Lambda records and EventBridge events; and a
Powertools BatchProcessor consumer with Idempotency on defer_id (Powertools' DynamoDB
persistence on moto's DynamoDB) that processes a redelivered message once."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import pytest

from handler_lib import consumer, defer
from handler_lib._dispatch import DISPATCHER
from handler_lib.engine.sinks.claim_check import KEY_PREFIX
from handler_lib.testing import sqs_event
from tests.support.moto_server import client, drain_messages


@pytest.fixture
def sent(aws_resources, moto_endpoint, tmp_path, monkeypatch):
    """A handler's items, delivered inline: a 600 KB SQS message (by S3), a small one, a
    300 KB SNS message (by S3) to a raw and to an enveloped subscription, and an event."""
    res = aws_resources()
    bucket = f"payloads-{uuid.uuid4().hex[:12]}"
    s3 = client("s3", moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    sqs, sns = client("sqs", moto_endpoint), client("sns", moto_endpoint)
    wrapped_url = sqs.create_queue(QueueName=f"{res.prefix}-wrapped")["QueueUrl"]
    wrapped_arn = sqs.get_queue_attributes(QueueUrl=wrapped_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=res.topic_arn, Protocol="sqs", Endpoint=wrapped_arn)  # SNS's JSON envelope
    monkeypatch.setattr(consumer, "_default_s3", None)  # made again, from this test's environment
    for name, value in {"AWS_ENDPOINT_URL": moto_endpoint, "DEFER_MODE": "inline", "DEFER_SOCKET": str(tmp_path / "nobody.sock"),
                        "DEFER_LARGE_PAYLOAD_BUCKET": bucket, "DEFER_LARGE_PAYLOAD_THRESHOLD": "262144"}.items():
        monkeypatch.setenv(name, value)
    DISPATCHER.reset()
    payloads = {"sqs": json.dumps({"order": "o-1", "pad": "é" * 300_000}, ensure_ascii=False),
                "small": json.dumps({"order": "o-2"}),
                "sns": json.dumps({"order": "o-3", "pad": "ü" * 150_000}, ensure_ascii=False), "event": {"order": "o-4"}}
    ids = {}

    @defer
    def handler(event, context):
        ids["sqs"] = defer.sqs(res.queue_url, payloads["sqs"], attributes={"traceparent": TRACEPARENT,
                                                                           "defer_tenant_id": "tenant-7"})
        ids["small"] = defer.sqs(res.queue_url, payloads["small"])
        ids["sns"] = defer.sns(res.topic_arn, payloads["sns"], attributes={"defer_tenant_id": "tenant-7"})
        ids["event"] = defer.event("OrderPlaced", {**payloads["event"], "defer_tenant_id": "tenant-7"},
                                   source=res.event_source, bus=res.bus_name)

    try:
        handler({}, SimpleNamespace(aws_request_id="r1"))
    finally:
        DISPATCHER.reset()
    return SimpleNamespace(res=res, bucket=bucket, s3=s3, ids=ids, payloads=payloads, wrapped_url=wrapped_url)


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def lambda_record(message):
    """A received message in the shape Lambda's SQS event source gives the function."""
    event = sqs_event(message["Body"])
    record = event["Records"][0]
    record["messageId"] = message["MessageId"]
    record["messageAttributes"] = {
        name: {"stringValue": a.get("StringValue"), "dataType": a["DataType"], "stringListValues": [],
               "binaryListValues": []} for name, a in message.get("MessageAttributes", {}).items()}
    return record


def by_defer_id(found):
    return {r.defer_id: r for r in found}


def test_sqs_records_give_the_payload_the_id_the_trace_and_the_tenant(sent):
    messages = drain_messages(sent.res.queue_url, 2)
    found = by_defer_id(consumer.records({"Records": [lambda_record(m) for m in messages]}))
    big, small = found[sent.ids["sqs"]], found[sent.ids["small"]]
    assert big.pointer.key == KEY_PREFIX + sent.ids["sqs"] and big.pointer.bucket == sent.bucket
    assert big.body == sent.payloads["sqs"] and big.json()["order"] == "o-1"
    assert (big.source, big.traceparent, big.tenant_id) == ("sqs", TRACEPARENT, "tenant-7")
    assert "ExtendedPayloadSize" not in big.attributes
    assert small.pointer is None and small.body == sent.payloads["small"] and small.tenant_id is None


def test_sns_raw_enveloped_and_as_an_sns_event_read_alike(sent):
    (raw,) = drain_messages(sent.res.topic_queue_url, 1)
    (wrapped,) = drain_messages(sent.wrapped_url, 1)
    envelope = json.loads(wrapped["Body"])
    assert envelope["Type"] == "Notification" and "ExtendedPayloadSize" in envelope["MessageAttributes"]
    sns_event = {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": envelope}]}
    readings = [consumer.record(lambda_record(raw)), consumer.record(lambda_record(wrapped)),
                *consumer.records(sns_event)]
    assert [(r.source, r.defer_id, r.tenant_id) for r in readings] == [
        ("sqs", sent.ids["sns"], "tenant-7"), ("sqs", sent.ids["sns"], "tenant-7"), ("sns", sent.ids["sns"], "tenant-7")]
    assert {r.body for r in readings} == {sent.payloads["sns"]}


def test_an_eventbridge_event_read_from_its_target_queue_and_as_the_functions_event(sent):
    (message,) = drain_messages(sent.res.event_queue_url, 1)
    from_queue = consumer.record(lambda_record(message))
    (direct,) = consumer.records(json.loads(message["Body"]))  # what a rule targeting the function sends
    for found in (from_queue, direct):
        assert (found.defer_id, found.tenant_id) == (sent.ids["event"], "tenant-7")
        assert found.json()["order"] == "o-4"
    assert (from_queue.source, direct.source) == ("sqs", "events")


def test_a_payload_deleted_after_success_is_never_fetched_again_by_an_idempotent_consumer(sent, moto_endpoint,
                                                                                         monkeypatch):
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.idempotency import (DynamoDBPersistenceLayer, IdempotencyConfig,
                                                             idempotent_function)

    monkeypatch.delenv("POWERTOOLS_IDEMPOTENCY_DISABLED", raising=False)
    table = f"idempotency-{uuid.uuid4().hex[:8]}"
    client("dynamodb", moto_endpoint).create_table(
        TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=client("dynamodb", moto_endpoint))
    config = IdempotencyConfig(event_key_jmespath="defer_id", raise_on_no_idempotency_key=True)
    processor = BatchProcessor(event_type=EventType.SQS)
    processed = []

    @consumer.record_handler(delete_payload=True)
    @idempotent_function(data_keyword_argument="record", config=config, persistence_store=persistence)
    def handle(record: consumer.Record) -> dict:
        order = record.json()["order"]
        if order == "o-2" and not processed.count("o-2-failed"):
            processed.append("o-2-failed")
            raise RuntimeError("the first try of o-2 fails")
        processed.append(order)
        return {"order": order}

    def handler(event, context):
        config.register_lambda_context(context)  # Powertools' advice: in-progress records expire with the invoke
        return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)

    context = SimpleNamespace(aws_request_id="c1", get_remaining_time_in_millis=lambda: 60_000)
    records = [lambda_record(m) for m in drain_messages(sent.res.queue_url, 2)]
    first = handler({"Records": records}, context)
    failed_ids = [f["itemIdentifier"] for f in first["batchItemFailures"]]
    small = next(r for r in records if "o-2" in r["body"])
    assert failed_ids == [small["messageId"]]  # a partial batch failure: only o-2 comes back
    key = KEY_PREFIX + sent.ids["sqs"]
    assert sent.s3.list_objects_v2(Bucket=sent.bucket, Prefix=key).get("KeyCount") == 0  # deleted after success

    second = handler({"Records": records}, context)  # both redelivered (the big one, say, after a timeout)
    assert second == {"batchItemFailures": []}
    assert processed == ["o-1", "o-2-failed", "o-2"]  # o-1 once: its redelivery never read the deleted payload


def test_a_pointer_whose_object_is_gone_fails_when_its_body_is_read(sent):
    messages = drain_messages(sent.res.queue_url, 2)
    big = by_defer_id(consumer.records({"Records": [lambda_record(m) for m in messages]}))[sent.ids["sqs"]]
    assert big.delete_payload() is True
    assert big.dict()["defer_id"] == sent.ids["sqs"]  # the metadata needs no fetch
    with pytest.raises(Exception, match="NoSuchKey"):
        big.body


def test_the_trace_context_restores_as_an_opentelemetry_context(sent):
    trace = pytest.importorskip("opentelemetry.trace")
    messages = drain_messages(sent.res.queue_url, 2)
    big = by_defer_id(consumer.records({"Records": [lambda_record(m) for m in messages]}))[sent.ids["sqs"]]
    parent = trace.get_current_span(big.otel_context()).get_span_context()
    assert (format(parent.trace_id, "032x"), format(parent.span_id, "016x")) == (
        "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert parent.is_remote


def test_what_is_not_an_event_is_refused_clearly():
    with pytest.raises(ValueError, match="not an SQS, SNS or EventBridge event"):
        consumer.records({"body": "x"})
    with pytest.raises(ValueError, match="not a payload pointer"):
        consumer.record({"body": "plain", "messageAttributes": {
            "ExtendedPayloadSize": {"stringValue": "5", "dataType": "Number"}}})
