"""A queued task deferred under a tenant (its SQS message carries ``defer_tenant_id``, as
docs/api.md#tenants says) and run by the worker function (``handler_lib.worker.handler``, the
built layer, in the sandbox): what the task defers in turn should keep that tenant."""

from __future__ import annotations

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


def test_a_queued_tasks_own_defers_keep_the_tenant_its_message_carried(worker):
    box, res, out = worker
    item = wire.TaskItem(f"r6-{time.monotonic_ns()}", "", 0, "jobs:notify", ["o-1"])
    boto3.client("sqs").send_message(
        QueueUrl=res.queue_url, MessageBody=_task_queue.body_of(item),
        MessageAttributes={"defer_id": {"DataType": "String", "StringValue": item.id},
                           "defer_tenant_id": {"DataType": "String", "StringValue": "acme"}})
    (batch,) = SqsEventSource(box, boto3.client("sqs"), res.queue_url).drain()
    assert (batch.received, batch.failed, batch.function_error) == (1, [], None)
    sqs = boto3.client("sqs")
    got: list = []

    def landed() -> bool:
        got.extend(sqs.receive_message(QueueUrl=out, WaitTimeSeconds=0,
                                       MessageAttributeNames=["All"]).get("Messages", []))
        return bool(got)

    wait_until(landed, 8, message="the task's defer.sqs message never left the worker environment")
    assert got[0]["MessageAttributes"].get("defer_tenant_id", {}).get("StringValue") == "acme"
