"""The claim check in the delivery engine, against moto's S3, SQS and SNS through the fault
proxy: a payload over the threshold is put in S3 under its item's key and sent as the
extended clients' pointer, in batches beside ordinary messages; a failed put or send is
retried under the same key (one object, however many attempts) and an item that cannot be
delivered is dead-lettered whole, leaving at most its one object."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from handler_lib import config as cfg
from handler_lib import wire
from handler_lib._inline import make_drainer
from handler_lib.engine.sinks.claim_check import KEY_PREFIX
from tests.support.moto_server import client, drain_messages, drain_queue

THRESHOLD = 262_144  # the extended clients' own


@pytest.fixture
def env(aws_resources, fault_proxy, moto_endpoint, monkeypatch):
    res = aws_resources()
    bucket = f"payloads-{uuid.uuid4().hex[:12]}"
    client("s3", moto_endpoint).create_bucket(Bucket=bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint_url)
    monkeypatch.setenv("DEFER_DLQ_URL", res.dlq_url)
    monkeypatch.setenv("DEFER_LARGE_PAYLOAD_BUCKET", bucket)
    monkeypatch.setenv("DEFER_LARGE_PAYLOAD_THRESHOLD", str(THRESHOLD))
    return res, fault_proxy, bucket, client("s3", moto_endpoint)


def item_id() -> str:
    return f"it-{uuid.uuid4().hex}"


def sqs_item(url: str, body: str, **attributes) -> wire.SqsItem:
    return wire.SqsItem(item_id(), "req", time.time_ns() // 1000, url, body, attributes=attributes or None)


def drain(items, budget_s: float = 15.0):
    drainer = make_drainer(cfg.load())
    for item in items:
        drainer.queue.add(item)
    return drainer.drain(time.monotonic() + budget_s)


def pointer_of(message) -> tuple[str, str]:
    name, location = json.loads(message["Body"])
    assert name == "software.amazon.payloadoffloading.PayloadS3Pointer"
    return location["s3BucketName"], location["s3Key"]


def keys(s3, bucket) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_a_large_message_goes_to_s3_and_its_pointer_shares_a_batch_with_a_small_one(env):
    res, proxy, bucket, s3 = env
    big = sqs_item(res.queue_url, "é" * 300_000, color="blue")  # 600,000 bytes of UTF-8
    small = sqs_item(res.queue_url, "small")
    report = drain([big, small])
    assert report.delivered == 2 and proxy.count("SendMessageBatch") == 1
    messages = {m["MessageAttributes"]["defer_id"]["StringValue"]: m for m in drain_messages(res.queue_url, 2)}
    pointed = messages[big.id]
    assert pointer_of(pointed) == (bucket, KEY_PREFIX + big.id)
    assert pointed["MessageAttributes"]["ExtendedPayloadSize"] == {"DataType": "Number", "StringValue": "600000"}
    assert pointed["MessageAttributes"]["color"]["StringValue"] == "blue"
    assert s3.get_object(Bucket=bucket, Key=KEY_PREFIX + big.id)["Body"].read().decode() == big.body
    assert messages[small.id]["Body"] == "small" and "ExtendedPayloadSize" not in messages[small.id]["MessageAttributes"]
    assert keys(s3, bucket) == [KEY_PREFIX + big.id]


def test_an_sns_message_over_256_kb_goes_by_s3_without_a_threshold_set(env, monkeypatch):
    res, proxy, bucket, s3 = env
    monkeypatch.delenv("DEFER_LARGE_PAYLOAD_THRESHOLD")  # SNS's own limit: 262,144 bytes
    body = json.dumps({"pad": "x" * 300_000})
    item = wire.SnsItem(item_id(), "req", time.time_ns() // 1000, res.topic_arn, body)
    under = wire.SnsItem(item_id(), "req", time.time_ns() // 1000, res.topic_arn, "y" * 200_000)
    assert drain([item, under]).delivered == 2
    got = {m["MessageAttributes"]["defer_id"]["StringValue"]: m for m in drain_messages(res.topic_queue_url, 2)}
    assert pointer_of(got[item.id]) == (bucket, KEY_PREFIX + item.id)
    assert got[item.id]["MessageAttributes"]["ExtendedPayloadSize"]["StringValue"] == str(len(body))
    assert got[under.id]["Body"] == "y" * 200_000  # under the threshold: sent as it is
    assert keys(s3, bucket) == [KEY_PREFIX + item.id]


def test_a_drain_of_many_large_items_batches_their_pointers_ten_at_a_time(env):
    res, proxy, bucket, s3 = env
    items = [sqs_item(res.queue_url, json.dumps({"n": n, "pad": "z" * 300_000})) for n in range(12)]
    assert drain(items).delivered == 12
    assert proxy.count("SendMessageBatch") == 2  # pointers are small: 10 + 2
    assert len(drain_messages(res.queue_url, 12)) == 12
    assert keys(s3, bucket) == sorted(KEY_PREFIX + i.id for i in items)


def test_a_failed_put_is_retried_under_the_same_key(env):
    res, proxy, bucket, s3 = env
    proxy.error(None, "InternalError", 500, service="s3", calls=2)  # botocore retries once itself
    item = sqs_item(res.queue_url, "p" * 300_000)
    report = drain([item])
    assert report.delivered == 1 and report.retried == 1
    (message,) = drain_messages(res.queue_url, 1)
    assert pointer_of(message) == (bucket, KEY_PREFIX + item.id)
    assert keys(s3, bucket) == [KEY_PREFIX + item.id]


def test_a_failed_send_after_the_put_puts_again_over_the_same_object(env):
    res, proxy, bucket, s3 = env
    proxy.fail_entries("SendMessageBatch", calls=1, code="InternalError")
    item = sqs_item(res.queue_url, "q" * 300_000)
    report = drain([item])
    assert report.delivered == 1 and report.retried == 1
    puts = [r for r in proxy.recorded() if r.service == "s3" and r.action.startswith("PUT ")]
    assert len(puts) == 2  # one per attempt ...
    assert keys(s3, bucket) == [KEY_PREFIX + item.id]  # ... and one object
    assert len(drain_messages(res.queue_url, 1)) == 1


def test_a_missing_bucket_dead_letters_the_item_whole(env, monkeypatch):
    res, proxy, bucket, s3 = env
    monkeypatch.setenv("DEFER_LARGE_PAYLOAD_BUCKET", "no-such-bucket-" + uuid.uuid4().hex[:8])
    item = sqs_item(res.queue_url, "r" * 300_000)
    report = drain([item])
    assert report.dead_lettered == 1 and report.delivered == 0
    (letter,) = drain_queue(res.dlq_url, 1)
    assert letter["error"]["code"] == "NoSuchBucket" and letter["item"]["body"] == item.body
    assert drain_messages(res.queue_url, 0, timeout=0.5) == []


def test_an_undeliverable_item_is_dead_lettered_and_leaves_one_object(env):
    res, proxy, bucket, s3 = env
    proxy.fail_entries("SendMessageBatch", calls=1, code="InvalidParameterValue", sender_fault=True)
    item = sqs_item(res.queue_url, "s" * 300_000)
    report = drain([item])
    proxy.clear()
    assert report.dead_lettered == 1
    (letter,) = drain_queue(res.dlq_url, 1)
    assert letter["item"]["body"] == item.body  # the letter holds the payload, not the pointer
    assert keys(s3, bucket) == [KEY_PREFIX + item.id]  # the orphan, under the prefix to expire


def test_a_dead_letter_over_the_threshold_is_never_offloaded(env, monkeypatch):
    res, proxy, bucket, s3 = env
    monkeypatch.setenv("DEFER_LARGE_PAYLOAD_THRESHOLD", "1000")
    missing = res.queue_url + "-missing"
    item = sqs_item(missing, "t" * 5_000)
    report = drain([item])
    assert report.dead_lettered == 1
    (message,) = drain_messages(res.dlq_url, 1)
    assert json.loads(message["Body"])["item"]["body"] == item.body  # a letter redrive can read
    assert "ExtendedPayloadSize" not in message.get("MessageAttributes", {})
    assert keys(s3, bucket) == [KEY_PREFIX + item.id]  # the item's own put happened; the letter's did not
