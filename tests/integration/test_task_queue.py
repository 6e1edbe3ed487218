"""``@defer.task(queue=...)`` and ``handler_lib.worker``: a producer function and a worker
function, each in its own sandbox with the built layer, against moto's SQS. The test plays the
SQS event source mapping: it receives messages, hands them to the worker as Lambda's SQS
event, deletes what the worker did not report failed and makes the rest visible again."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import boto3
import pytest

from lambda_sandbox import Sandbox
from lambda_sandbox.sqs_source import record_of
from tests.support.waiting import wait_until

FUNCTION = Path(__file__).parent / "functions" / "queued_tasks"


@pytest.fixture
def boxes(built_layer: Path, aws_resources: Any, tmp_path: Path) -> Iterator[Tuple[Sandbox, Sandbox, Any]]:
    res = aws_resources()
    started: List[Sandbox] = []
    try:
        for role, handler in (("producer", "app.handler"), ("worker", "handler_lib.worker.handler")):
            env = {**res.env(), "TASK_QUEUE_URL": res.queue_url,
                   "TASK_FIFO_QUEUE_URL": res.fifo_queue_url,
                   "DEFER_SOCKET": str(tmp_path / f"{role}.sock"),
                   "DEFER_JOURNAL_DIR": str(tmp_path / f"{role}-journal")}
            started.append(Sandbox(built_layer, FUNCTION, handler, timeout_s=10, env=env).start())
        yield started[0], started[1], res
    finally:
        for box in started:
            box.stop()


def _receive(queue_url: str, count: int) -> List[Dict[str, Any]]:
    sqs = boto3.client("sqs")
    got: List[Dict[str, Any]] = []

    def more() -> bool:
        reply = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                    AttributeNames=["All"], MessageAttributeNames=["All"])
        got.extend(reply.get("Messages", []))
        return len(got) >= count

    wait_until(more, 10, message=f"fewer than {count} messages on {queue_url}")
    assert len(got) == count
    return got


def _settle(queue_url: str, messages: List[Dict[str, Any]], failures: List[Dict[str, str]]) -> None:
    """What the event source mapping does with the worker's answer."""
    sqs = boto3.client("sqs")
    failed = {f["itemIdentifier"] for f in failures}
    for message in messages:
        if message["MessageId"] in failed:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"],
                                          VisibilityTimeout=0)
        else:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _work(worker: Sandbox, res: Any, messages: List[Dict[str, Any]], extra: List[Dict[str, Any]] = (),
          fifo: bool = False) -> List[str]:
    queue_url, queue_arn = (res.fifo_queue_url, res.fifo_queue_arn) if fifo else (res.queue_url, res.queue_arn)
    records = [record_of(m, queue_arn) for m in messages] + list(extra)
    result = worker.invoke({"Records": records})
    assert result.function_error is None, result.json()
    worker.wait_for_report(result.request_id)
    failures = result.json()["batchItemFailures"]
    _settle(queue_url, messages, failures)
    return [f["itemIdentifier"] for f in failures]


def test_a_queued_task_that_fails_twice_runs_three_times_in_the_worker(boxes):
    producer, worker, res = boxes
    result = producer.invoke({"calls": [["rebuild_report", "2026-12-01", 2]]})
    (item_id,) = result.json()["ids"]

    reported = []
    for _ in range(3):
        (message,) = _receive(res.queue_url, 1)
        assert json.loads(message["Body"])["defer_id"] == item_id
        assert message["MessageAttributes"]["defer_id"]["StringValue"] == item_id
        reported.append(_work(worker, res, [message]))
    mid = message["MessageId"]
    assert reported == [[mid], [mid], []]  # one partial failure per failed run, then done
    runs = [line.text for line in worker.logs if "rebuild_report 2026-12-01 run" in line.text]
    assert [r.split(" run ")[1] for r in runs] == [f"1 of {item_id}", f"2 of {item_id}", f"3 of {item_id}"]
    assert boto3.client("sqs").receive_message(QueueUrl=res.queue_url, WaitTimeSeconds=0).get("Messages") is None


def test_past_its_max_attempts_a_task_is_dead_lettered_and_leaves_the_queue(boxes):
    producer, worker, res = boxes
    (item_id,) = producer.invoke({"calls": [["always_fails", "2026-12-02"]]}).json()["ids"]
    first = _receive(res.queue_url, 1)
    assert _work(worker, res, first) == [first[0]["MessageId"]]   # attempt 1 of 2: SQS retries it
    second = _receive(res.queue_url, 1)
    assert _work(worker, res, second) == []                       # attempt 2: dead-lettered, deleted
    (letter,) = _receive(res.dlq_url, 1)
    body = json.loads(letter["Body"])
    assert (body["id"], body["attempts"], body["error"]["code"]) == (item_id, 2, "Defer.TaskFailed")
    assert "cannot rebuild 2026-12-02" in body["error"]["message"]
    assert "RuntimeError" in body["error"]["traceback"]


def test_a_batch_of_mixed_outcomes_reports_exactly_the_records_to_run_again(boxes):
    producer, worker, res = boxes
    calls = [["rebuild_report", f"2026-11-{d:02d}", d % 2] for d in range(1, 8)]  # odd days fail once
    calls += [["exits", "2026-11-08"], ["always_fails", "2026-11-09"], ["rebuild_report", "2026-11-10"]]
    ids = producer.invoke({"calls": calls}).json()["ids"]
    assert len(ids) == 10
    by_id = {json.loads(m["Body"])["defer_id"]: m for m in _receive(res.queue_url, 10)}
    messages = [by_id[i] for i in ids]  # the records in deferral order

    ours = json.loads(messages[0]["Body"])
    unknown = dict(ours, task="jobs:no_such_task")
    hostile = [
        dict(record_of(messages[0], res.queue_arn), messageId="not-ours", body='{"order": 1}'),
        dict(record_of(messages[0], res.queue_arn), messageId="damaged",
             body=json.dumps(dict(ours, wire=base64.b64encode(b"\xc1garbage").decode()))),
        dict(record_of(messages[0], res.queue_arn), messageId="forged-name", body=json.dumps(unknown)),
    ]
    failures = _work(worker, res, messages, hostile)
    # odd days fail their first run; SystemExit is a failed run like any other (attempt 1 of 3);
    # always_fails is retried (1 of 2); not ours and damaged are never run nor deleted;
    # a payload that does not match its envelope is damaged too
    expected = [m["MessageId"] for m, call in zip(messages, calls)
                if (call[0] == "rebuild_report" and call[2:] and call[2] == 1) or call[0] in ("exits", "always_fails")]
    assert failures == expected + ["not-ours", "damaged", "forged-name"]
    assert any("is not a queued task" in line.text for line in worker.logs)
    assert any("does not decode" in line.text for line in worker.logs)
    # the worker survived SystemExit and ran every record after it
    assert sum("rebuild_report 2026-11-10 run 1" in line.text for line in worker.logs) == 1


def test_a_task_the_worker_does_not_have_is_dead_lettered_at_once(boxes):
    producer, worker, res = boxes
    producer.invoke({"calls": [["rebuild_report", "2026-12-03"]]})
    (message,) = _receive(res.queue_url, 1)
    envelope = json.loads(message["Body"])
    # the same call, re-encoded under a name this function's code does not define
    from handler_lib import _task_queue, wire

    item = _task_queue.task_of(message["Body"])._replace(function="jobs:retired_task")
    forged = dict(message, Body=_task_queue.body_of(item))
    assert json.loads(forged["Body"])["defer_id"] == envelope["defer_id"]
    assert _work(worker, res, [forged]) == []
    (letter,) = _receive(res.dlq_url, 1)
    body = json.loads(letter["Body"])
    assert (body["error"]["code"], body["attempts"]) == ("Defer.TaskNotFound", 1)
    assert "jobs:retired_task" in body["error"]["message"]
    assert isinstance(wire.decode(base64.b64decode(body["wire"])), wire.TaskItem)


def test_on_a_fifo_queue_nothing_after_a_failed_record_runs_before_it(boxes):
    producer, worker, res = boxes
    result = producer.invoke({"calls": [["in_order", 1, 1], ["in_order", 2], ["in_order", 3]]})
    ids = result.json()["ids"]
    # The group's messages land one call each: receiving before the last one landed would put
    # the first in flight, which holds the rest of its group back on a FIFO queue.
    producer.wait_for_report(result.request_id)
    first = _receive(res.fifo_queue_url, 3)
    assert [json.loads(m["Body"])["defer_id"] for m in first] == ids
    assert _work(worker, res, first, fifo=True) == [m["MessageId"] for m in first]
    second = _receive(res.fifo_queue_url, 3)
    assert _work(worker, res, second, fifo=True) == []
    runs = [line.text for line in worker.logs if line.text.startswith("in_order ")]
    assert runs == ["in_order 1 run 1", "in_order 1 run 2", "in_order 2 run 1", "in_order 3 run 1"]
