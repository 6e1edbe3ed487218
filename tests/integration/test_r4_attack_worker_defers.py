"""A queued task that defers more work (``defer.sqs``) while the worker function
(``handler_lib.worker.handler``, with the built layer) runs it: what it defers leaves the
environment with that invoke, not with some later invoke (there may be none)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator, Tuple

import boto3
import pytest

from handler_lib import _task_queue, wire
from lambda_sandbox import Sandbox
from lambda_sandbox.sqs_source import SqsEventSource
from tests.support.waiting import wait_until

FUNCTION = Path(__file__).parent / "functions" / "r4_worker_defers"


@pytest.fixture
def worker(built_layer: Path, aws_resources: Any, tmp_path: Path) -> Iterator[Tuple[Sandbox, Any, Any]]:
    res = aws_resources()
    sqs = boto3.client("sqs")
    out = sqs.create_queue(QueueName=f"{res.prefix}-out")["QueueUrl"]
    env = {**res.env(), "TASK_QUEUE_URL": res.queue_url, "OUT_QUEUE_URL": out,
           "DEFER_SOCKET": str(tmp_path / "worker.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, FUNCTION, "handler_lib.worker.handler", timeout_s=10, env=env).start()
    try:
        yield box, res, out
    finally:
        box.stop()


def _send_task(queue_url: str, function: str, *args: Any) -> str:
    item = wire.TaskItem(f"r4-{time.monotonic_ns()}", "", 0, function, list(args))
    boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody=_task_queue.body_of(item))
    return item.id


def test_a_queued_task_s_own_defer_sqs_goes_out_with_the_worker_s_invoke(worker):
    box, res, out = worker
    _send_task(res.queue_url, "jobs:notify", "o-1")
    source = SqsEventSource(box, boto3.client("sqs"), res.queue_url)
    (batch,) = source.drain()
    assert (batch.received, batch.failed, batch.function_error) == (1, [], None)
    # the worker is idle now (frozen between invokes, as on Lambda): the message must be out
    sqs = boto3.client("sqs")
    got: list = []

    def landed() -> bool:
        got.extend(sqs.receive_message(QueueUrl=out, WaitTimeSeconds=0).get("Messages", []))
        return bool(got)

    wait_until(landed, 8, message="the task's defer.sqs message never left the worker environment")
    assert json.loads(got[0]["Body"]) == {"order": "o-1"}

