"""The moto server fixtures really deliver over HTTP (SNS->SQS, EventBridge->SQS)."""
from __future__ import annotations

import json
import os
import time

from tests.support.moto_server import client, drain_messages, drain_queue


def test_aws_env_applied_and_points_at_moto(aws_env: dict[str, str], moto_endpoint: str) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == moto_endpoint == aws_env["AWS_ENDPOINT_URL"]
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_REGION"] == os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    assert "AWS_PROFILE" not in os.environ and "AWS_SESSION_TOKEN" not in os.environ
    import boto3

    # A plain boto3 client (no explicit endpoint) reaches moto through AWS_ENDPOINT_URL.
    sqs = boto3.client("sqs")
    assert sqs.meta.endpoint_url == moto_endpoint
    assert sqs.list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_clean_environ_part1_sets_a_var() -> None:
    os.environ["DEFER_HARNESS_LEAK_CHECK"] = "1"


def test_clean_environ_part2_var_is_gone() -> None:
    assert "DEFER_HARNESS_LEAK_CHECK" not in os.environ


def test_resources_are_unique_per_call(aws_resources) -> None:
    a, b = aws_resources(), aws_resources()
    assert a.queue_url != b.queue_url and a.topic_arn != b.topic_arn and a.bus_name != b.bus_name
    assert a.fifo_queue_url.endswith(".fifo") and a.fifo_topic_arn.endswith(".fifo")


def test_sqs_roundtrip_and_drain_parses_json(aws_resources) -> None:
    res = aws_resources()
    sqs = client("sqs")
    sqs.send_message(QueueUrl=res.queue_url, MessageBody=json.dumps({"n": 1}))
    sqs.send_message(QueueUrl=res.queue_url, MessageBody="not json")
    bodies = drain_queue(res.queue_url, 2, timeout=5)
    assert sorted(bodies, key=str) == sorted([{"n": 1}, "not json"], key=str)
    # Drained messages were deleted: nothing comes back.
    assert drain_queue(res.queue_url, 0, timeout=0.3) == []


def test_fifo_queue_keeps_group_and_dedup(aws_resources) -> None:
    res = aws_resources()
    sqs = client("sqs")
    for i in range(3):
        sqs.send_message(QueueUrl=res.fifo_queue_url, MessageBody=str(i), MessageGroupId="g",
                         MessageDeduplicationId=f"d{i}")
    sqs.send_message(QueueUrl=res.fifo_queue_url, MessageBody="dup", MessageGroupId="g",
                     MessageDeduplicationId="d0")
    msgs = drain_messages(res.fifo_queue_url, 3, timeout=5)
    assert [m["Body"] for m in msgs] == ["0", "1", "2"]
    assert {m["Attributes"]["MessageGroupId"] for m in msgs} == {"g"}


def test_sns_delivers_raw_to_subscribed_queue(aws_resources) -> None:
    res = aws_resources()
    client("sns").publish(TopicArn=res.topic_arn, Message=json.dumps({"order": 7}),
                          MessageAttributes={"kind": {"DataType": "String", "StringValue": "x"}})
    msgs = drain_messages(res.topic_queue_url, 1, timeout=5)
    assert len(msgs) == 1
    assert json.loads(msgs[0]["Body"]) == {"order": 7}  # raw delivery: no SNS envelope
    assert msgs[0]["MessageAttributes"]["kind"]["StringValue"] == "x"


def test_sns_fifo_topic_delivers_to_fifo_queue(aws_resources) -> None:
    res = aws_resources()
    client("sns").publish(TopicArn=res.fifo_topic_arn, Message="m", MessageGroupId="g1",
                          MessageDeduplicationId="x1")
    msgs = drain_messages(res.fifo_topic_queue_url, 1, timeout=5)
    assert [m["Body"] for m in msgs] == ["m"]
    assert msgs[0]["Attributes"]["MessageGroupId"] == "g1"


def test_eventbridge_rule_delivers_matching_events_only(aws_resources) -> None:
    res = aws_resources()
    out = client("events").put_events(Entries=[
        {"Source": res.event_source, "DetailType": "OrderCreated", "Detail": json.dumps({"id": 1}),
         "EventBusName": res.bus_name},
        {"Source": "someone.else", "DetailType": "OrderCreated", "Detail": "{}",
         "EventBusName": res.bus_name},
    ])
    assert out["FailedEntryCount"] == 0
    bodies = drain_queue(res.event_queue_url, 1, timeout=5)
    assert len(bodies) == 1
    assert bodies[0]["source"] == res.event_source
    assert bodies[0]["detail-type"] == "OrderCreated"
    assert bodies[0]["detail"] == {"id": 1}
    assert bodies[0]["id"] == out["Entries"][0]["EventId"]
    assert drain_queue(res.event_queue_url, 0, timeout=0.3) == []  # the other source did not match


def test_drain_queue_is_bounded(aws_resources) -> None:
    res = aws_resources()
    t0 = time.monotonic()
    assert drain_queue(res.queue_url, 1, timeout=0.5) == []
    assert time.monotonic() - t0 < 2.0
