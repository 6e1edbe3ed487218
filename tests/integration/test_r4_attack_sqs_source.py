"""lambda_sandbox.sqs_source against hostile answers: a function that names a failed record
twice. Lambda sends the record back once and deletes the others; the poll's counts must say
so (done was received minus every entry, duplicates included). Sandbox, moto's SQS."""

from __future__ import annotations

from pathlib import Path

import boto3

from lambda_sandbox import Sandbox
from lambda_sandbox.sqs_source import SqsEventSource

FUNCTION = Path(__file__).parent / "functions" / "r4_dup_failures"


def test_a_record_named_twice_in_the_failures_is_one_failure(empty_layer, aws_resources):
    res = aws_resources()
    sqs = boto3.client("sqs")
    sqs.send_message_batch(QueueUrl=res.queue_url, Entries=[
        {"Id": "0", "MessageBody": "fail"}, {"Id": "1", "MessageBody": "ok"}, {"Id": "2", "MessageBody": "ok"}])
    box = Sandbox(empty_layer, FUNCTION, "app.handler", timeout_s=5).start()
    try:
        source = SqsEventSource(box, sqs, res.queue_url, batch_size=3)
        result = source.poll()
        assert result.received == 3 and result.function_error is None
        assert len(result.failed) == 1 and result.done == 2, result
        left = sqs.receive_message(QueueUrl=res.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        assert [m["Body"] for m in left.get("Messages", [])] == ["fail"]
    finally:
        box.stop()
