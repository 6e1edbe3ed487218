"""The fault proxy produces faults that real boto3 parses like real AWS ones."""
from __future__ import annotations

import json
import time

import botocore.exceptions
import pytest
from botocore.config import Config

from tests.support.moto_server import client, drain_queue

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


def test_proxy_forwards_and_counts(fault_proxy, aws_resources) -> None:
    res = aws_resources()
    sqs = client("sqs", fault_proxy.endpoint_url)
    sqs.send_message(QueueUrl=res.queue_url, MessageBody="hello")
    assert drain_queue(res.queue_url, 1, timeout=5, sqs=sqs) == ["hello"]
    assert fault_proxy.count("SendMessage") == 1
    assert fault_proxy.count("ReceiveMessage") >= 1
    assert fault_proxy.requests[0].service == "sqs"


def test_sqs_batch_entry_failure_seen_by_boto3(fault_proxy, aws_resources) -> None:
    res = aws_resources()
    fault_proxy.fail_entries("SendMessageBatch", ids={"b"}, code="InternalError", calls=1)
    sqs = client("sqs", fault_proxy.endpoint_url)
    out = sqs.send_message_batch(QueueUrl=res.queue_url, Entries=[
        {"Id": "a", "MessageBody": "A"}, {"Id": "b", "MessageBody": "B"}])
    assert [f["Id"] for f in out["Failed"]] == ["b"]
    assert out["Failed"][0]["Code"] == "InternalError" and out["Failed"][0]["SenderFault"] is False
    assert [s["Id"] for s in out["Successful"]] == ["a"]
    # The failed entry never reached moto; only the good one is delivered.
    assert drain_queue(res.queue_url, 1, timeout=5) == ["A"]
    assert drain_queue(res.queue_url, 0, timeout=0.3) == []
    # calls=1: the retry of "b" goes through.
    out = sqs.send_message_batch(QueueUrl=res.queue_url, Entries=[{"Id": "b", "MessageBody": "B"}])
    assert out.get("Failed", []) == [] and drain_queue(res.queue_url, 1, timeout=5) == ["B"]


def test_sns_publish_batch_entry_failure(fault_proxy, aws_resources) -> None:
    res = aws_resources()
    fault_proxy.fail_entries("PublishBatch", indexes={0}, code="InternalError")
    sns = client("sns", fault_proxy.endpoint_url)
    out = sns.publish_batch(TopicArn=res.topic_arn, PublishBatchRequestEntries=[
        {"Id": "x", "Message": "X"}, {"Id": "y", "Message": "Y"}])
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in out["Failed"]] == [("x", "InternalError", False)]
    assert [s["Id"] for s in out["Successful"]] == ["y"]
    assert drain_queue(res.topic_queue_url, 1, timeout=5) == ["Y"]
    assert drain_queue(res.topic_queue_url, 0, timeout=0.3) == []


def test_put_events_entry_failure_keeps_positions(fault_proxy, aws_resources) -> None:
    res = aws_resources()
    fault_proxy.fail_entries("PutEvents", match=lambda e: "bad" in e.get("Detail", ""),
                             code="ThrottlingException")
    events = client("events", fault_proxy.endpoint_url)
    entries = [{"Source": res.event_source, "DetailType": "T", "Detail": json.dumps({"v": v}),
                "EventBusName": res.bus_name} for v in ("ok1", "bad", "ok2")]
    out = events.put_events(Entries=entries)
    assert out["FailedEntryCount"] == 1
    assert "EventId" in out["Entries"][0] and "EventId" in out["Entries"][2]
    assert out["Entries"][1]["ErrorCode"] == "ThrottlingException"
    got = drain_queue(res.event_queue_url, 2, timeout=5)
    got += drain_queue(res.event_queue_url, 0, timeout=0.3)
    assert sorted(b["detail"]["v"] for b in got) == ["ok1", "ok2"]


@pytest.mark.parametrize("service, code", [("sqs", "RequestThrottled"), ("sns", "Throttling"),
                                           ("events", "ThrottlingException")])
def test_throttling_is_a_botocore_throttling_error(fault_proxy, aws_resources, service, code) -> None:
    res = aws_resources()
    c = client(service, fault_proxy.endpoint_url, config=NO_RETRY)
    call = {
        "sqs": lambda: c.send_message_batch(QueueUrl=res.queue_url, Entries=[{"Id": "1", "MessageBody": "m"}]),
        "sns": lambda: c.publish_batch(TopicArn=res.topic_arn,
                                       PublishBatchRequestEntries=[{"Id": "1", "Message": "m"}]),
        "events": lambda: c.put_events(Entries=[{"Source": res.event_source, "DetailType": "T",
                                                 "Detail": "{}", "EventBusName": res.bus_name}]),
    }[service]
    fault_proxy.throttle(service=service, calls=1)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # botocore's own retry logic classifies it as throttling.
    from botocore.retries.standard import ThrottledRetryableChecker
    assert code in ThrottledRetryableChecker._THROTTLED_ERROR_CODES
    call()  # calls=1: the next call is forwarded
    assert fault_proxy.requests[-1].outcome == "forwarded"


def test_throttle_then_boto3_retry_succeeds(fault_proxy, aws_resources) -> None:
    res = aws_resources()
    fault_proxy.throttle("SendMessage", calls=1)
    sqs = client("sqs", fault_proxy.endpoint_url,
                 config=Config(retries={"mode": "standard", "total_max_attempts": 3}))
    out = sqs.send_message(QueueUrl=res.queue_url, MessageBody="m")
    assert out["ResponseMetadata"]["RetryAttempts"] == 1
    assert fault_proxy.count("SendMessage") == 2


def test_error_rule_and_latency(fault_proxy, aws_resources) -> None:
    res = aws_resources()
    sqs = client("sqs", fault_proxy.endpoint_url, config=NO_RETRY)
    fault_proxy.error("GetQueueUrl", "InternalError", 500, calls=1)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sqs.get_queue_url(QueueName=f"{res.prefix}-q")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    fault_proxy.set_latency(0.25, "GetQueueUrl")
    t0 = time.monotonic()
    assert sqs.get_queue_url(QueueName=f"{res.prefix}-q")["QueueUrl"].endswith(f"{res.prefix}-q")
    assert time.monotonic() - t0 >= 0.25
    fault_proxy.set_latency(0, "GetQueueUrl")
    t0 = time.monotonic()
    sqs.get_queue_url(QueueName=f"{res.prefix}-q")
    assert time.monotonic() - t0 < 0.25


def test_refuse_and_accept_connections(fault_proxy, aws_resources) -> None:
    res = aws_resources()
    sqs = client("sqs", fault_proxy.endpoint_url, config=NO_RETRY)
    sqs.get_queue_url(QueueName=f"{res.prefix}-q")  # opens a keep-alive connection
    fault_proxy.refuse_connections()
    with pytest.raises((botocore.exceptions.EndpointConnectionError,
                        botocore.exceptions.ConnectionClosedError)):
        sqs.get_queue_url(QueueName=f"{res.prefix}-q")
    fault_proxy.accept_connections()
    assert sqs.get_queue_url(QueueName=f"{res.prefix}-q")["QueueUrl"]


@pytest.mark.parametrize("service, code", [("sqs", "RequestThrottled"), ("sns", "Throttling"),
                                           ("events", "ThrottlingException")])
def test_a_quota_throttles_the_excess_with_the_services_reply(fault_proxy, aws_resources, service, code) -> None:
    res = aws_resources()
    c = client(service, fault_proxy.endpoint_url, config=NO_RETRY)
    action, call = {
        "sqs": ("SendMessageBatch", lambda n: c.send_message_batch(
            QueueUrl=res.queue_url, Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(n)])),
        "sns": ("PublishBatch", lambda n: c.publish_batch(
            TopicArn=res.topic_arn, PublishBatchRequestEntries=[{"Id": str(i), "Message": "m"} for i in range(n)])),
        "events": ("PutEvents", lambda n: c.put_events(Entries=[
            {"Source": res.event_source, "DetailType": "T", "Detail": "{}", "EventBusName": res.bus_name}] * n)),
    }[service]
    # 10 entries a second, a burst of 10: one 10-entry batch passes, the next is throttled
    fault_proxy.set_quota(action, 10, unit="entries")
    call(10)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call(10)
    assert info.value.response["Error"]["Code"] == code
    stats = fault_proxy.quota_stats()[action]
    assert (stats["admitted"], stats["admitted_entries"], stats["throttled"], stats["throttled_entries"]) == (1, 10, 1, 10)
    assert fault_proxy.recorded(action)[-1].outcome == f"throttled:{code}"
    fault_proxy.set_quota(action, 0)  # removed: forwarded again
    call(10)  # no ClientError
    assert fault_proxy.quota_stats() == {}
