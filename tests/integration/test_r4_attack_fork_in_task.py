"""A queued task that forks a child which ends with ``sys.exit(0)``: the worker took the
child's SystemExit for the task's failure (any exception of a task is its outcome) and the
child went on with the batch, running the next records a second time, and then answered the
invoke as a second runtime. Worker sandbox with the built layer, moto's SQS."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator, Tuple

import boto3
import pytest

from handler_lib import _task_queue, wire
from lambda_sandbox import Sandbox
from lambda_sandbox.sqs_source import SqsEventSource

FUNCTION = Path(__file__).parent / "functions" / "r4_fork_in_task"


@pytest.fixture
def worker(built_layer: Path, aws_resources: Any, tmp_path: Path) -> Iterator[Tuple[Sandbox, Any]]:
    res = aws_resources()
    env = {**res.env(), "TASK_QUEUE_URL": res.queue_url,
           "DEFER_SOCKET": str(tmp_path / "worker.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, FUNCTION, "handler_lib.worker.handler", timeout_s=10, env=env).start()
    try:
        yield box, res
    finally:
        box.stop()


def test_a_child_forked_by_a_queued_task_does_not_run_the_rest_of_the_batch(worker):
    box, res = worker
    sqs = boto3.client("sqs")
    for n, function in enumerate(("jobs:forks", "jobs:marker")):
        item = wire.TaskItem(f"r4fork-{n}-{time.monotonic_ns()}", "", 0, function, [n])
        sqs.send_message(QueueUrl=res.queue_url, MessageBody=_task_queue.body_of(item))
    source = SqsEventSource(box, sqs, res.queue_url)
    batches = source.drain(max_polls=5)
    assert sum(b.received for b in batches) == 2 and all(b.failed == [] for b in batches)
    runs = [line.split() for line in (box.tmp_dir / "r4-task-runs.log").read_text().splitlines()]
    parent = {pid for what, pid in runs if what.startswith("forks-")}
    markers = [pid for what, pid in runs if what.startswith("marker-")]
    assert len(markers) == 1 and set(markers) <= parent, runs


def test_a_child_forked_by_a_task_in_the_extension_settles_nothing(built_layer, aws_resources, tmp_path):
    """The same in the extension's process: the child took its SystemExit for the task's
    failure and settled the item in the journal the parent writes too."""
    res = aws_resources()
    env = {**res.env(), "TASK_QUEUE_URL": res.queue_url,
           "DEFER_SOCKET": str(tmp_path / "fn.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, FUNCTION, "app.handler", timeout_s=10, env=env).start()
    try:
        for n in (1, 2):
            result = box.invoke({"n": n})
            box.wait_for_report(result.request_id)
        runs = [line.split()[0] for line in (box.tmp_dir / "r4-task-runs.log").read_text().splitlines()]
        assert runs == ["here-1", "here-2"]
        assert not [line.text for line in box.logs if "failed on attempt" in line.text]
    finally:
        box.stop()
