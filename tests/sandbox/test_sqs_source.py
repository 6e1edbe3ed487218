"""lambda_sandbox.sqs_source: the sandbox's SQS event source settles each batch as Lambda's
event source mapping does (partial batch failures, whole-batch failures), against moto's SQS."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from lambda_sandbox.sqs_source import SqsEventSource

WORKER = '''
import json

def handler(event, context):
    bodies = [json.loads(r["body"]) for r in event["Records"]]
    if any(b.get("raise") for b in bodies):
        raise RuntimeError("the whole batch fails")
    if any(b.get("unknown") for b in bodies):
        return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
    print("ran " + " ".join(str(b["n"]) for b in bodies if not b.get("fail")), flush=True)
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]}
                                  for r, b in zip(event["Records"], bodies) if b.get("fail")]}
'''


@pytest.fixture
def worker(lambda_dirs, sandbox_factory):
    (lambda_dirs.task / "app.py").write_text(WORKER)
    return sandbox_factory(lambda_dirs, echo=False)


def _queue(*bodies: dict) -> str:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"source-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    return url


def _left(url: str) -> list:
    got = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return sorted(json.loads(m["Body"])["n"] for m in got.get("Messages", []))


def test_the_records_the_function_names_go_back_and_the_others_are_deleted(worker):
    url = _queue({"n": 1}, {"n": 2, "fail": True}, {"n": 3})
    batch = SqsEventSource(worker, boto3.client("sqs"), url).poll()
    assert (batch.received, len(batch.failed), batch.done, batch.function_error) == (3, 1, 2, None)
    assert _left(url) == [2]  # visible again at once; 1 and 3 were deleted


def test_a_function_error_sends_the_whole_batch_back(worker):
    url = _queue({"n": 1}, {"n": 2, "raise": True})
    batch = SqsEventSource(worker, boto3.client("sqs"), url).poll()
    assert batch.function_error is not None and batch.done == 0 and len(batch.failed) == 2
    assert _left(url) == [1, 2]


def test_an_answer_naming_a_message_not_in_the_batch_fails_the_whole_batch(worker):
    url = _queue({"n": 1}, {"n": 2, "unknown": True})
    batch = SqsEventSource(worker, boto3.client("sqs"), url).poll()
    assert "not-in-this-batch" in str(batch.function_error) and batch.done == 0
    assert _left(url) == [1, 2]


def test_drain_polls_until_the_queue_is_empty(worker):
    url = _queue(*({"n": n} for n in range(25)))
    batches = SqsEventSource(worker, boto3.client("sqs"), url, batch_size=10).drain()
    assert sum(b.done for b in batches) == 25 and all(b.received <= 10 for b in batches)
    ran = [int(n) for line in worker.logs if line.text.startswith("ran ") for n in line.text.split()[1:]]
    assert sorted(ran) == list(range(25)) and len(ran) == 25  # each message ran once
    assert _left(url) == []


def test_a_batch_size_sqs_cannot_receive_is_refused(worker):
    with pytest.raises(ValueError, match="outside SQS's 1..10"):
        SqsEventSource(worker, boto3.client("sqs"), _queue(), batch_size=11)
