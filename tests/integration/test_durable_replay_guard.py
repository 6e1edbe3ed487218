"""The replay guard under the durable execution SDK's own local runner: a durable handler
re-runs from the top each time its execution resumes, and what it defers outside a step
must go out once per execution, not once per replay. Delivery is inline (no extension) to
moto's SQS, so what is counted is what reached the queue."""

from __future__ import annotations

import json
from typing import Any, List

import boto3
import pytest
from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration
from aws_durable_execution_sdk_python.execution import InvocationStatus
from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

from handler_lib import defer
from handler_lib._dispatch import DISPATCHER
from tests.support.moto_server import drain_queue


@pytest.fixture
def inline(tmp_path, monkeypatch):
    monkeypatch.setenv("DEFER_SOCKET", str(tmp_path / "nobody-listens.sock"))
    DISPATCHER.reset()
    yield
    DISPATCHER.reset()


def _queue_is_empty(queue_url: str) -> bool:
    sqs = boto3.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0


def test_an_item_deferred_outside_steps_goes_out_once_per_execution_across_replays(inline, aws_resources):
    res = aws_resources()
    runs: List[bool] = []

    @durable_execution
    @defer
    def handler(event: Any, context: DurableContext) -> str:
        runs.append(context.is_replaying())
        defer.sqs(res.queue_url, {"order": event["order"], "where": "before the waits"})
        context.wait(Duration.from_seconds(1))
        context.wait(Duration.from_seconds(1))  # two waits: two replays
        defer.sqs(res.queue_url, {"order": event["order"], "where": "after the waits"})
        return "done"

    with pytest.warns(RuntimeWarning, match="runs inline"), DurableFunctionTestRunner(handler=handler) as runner:
        result = runner.run(input=json.dumps({"order": "o-1"}), execution_timeout=30)
    assert result.status is InvocationStatus.SUCCEEDED
    assert len(runs) >= 3 and runs[0] is False and all(runs[1:])  # it did replay, and knew it
    got = drain_queue(res.queue_url, 2, timeout=5)
    assert sorted(m["where"] for m in got) == ["after the waits", "before the waits"]
    assert _queue_is_empty(res.queue_url)  # and nothing more came: one each, per execution


def test_an_item_deferred_inside_a_step_goes_out_once_for_the_step(inline, aws_resources):
    res = aws_resources()
    step_runs: List[int] = []

    def charge(step_context: StepContext) -> str:
        step_runs.append(1)
        defer.sqs(res.queue_url, {"charged": True})
        return "charged"

    @durable_execution
    @defer
    def handler(event: Any, context: DurableContext) -> str:
        context.step(charge, name="charge")
        context.wait(Duration.from_seconds(1))
        return "done"

    with pytest.warns(RuntimeWarning, match="runs inline"), DurableFunctionTestRunner(handler=handler) as runner:
        result = runner.run(input="{}", execution_timeout=30)
    assert result.status is InvocationStatus.SUCCEEDED
    assert len(step_runs) == 1  # the step body ran once; the replay took its checkpointed result
    assert drain_queue(res.queue_url, 1, timeout=5) == [{"charged": True}]
    assert _queue_is_empty(res.queue_url)


def test_outside_durable_execution_the_guard_cannot_see_replays_and_says_so(inline, aws_resources):
    res = aws_resources()

    @defer
    @durable_execution
    def handler(event: Any, context: DurableContext) -> str:
        defer.sqs(res.queue_url, {"where": "before the wait"})
        context.wait(Duration.from_seconds(1))
        return "done"

    with pytest.warns(RuntimeWarning) as warned, DurableFunctionTestRunner(handler=handler) as runner:
        result = runner.run(input="{}", execution_timeout=30)
    assert result.status is InvocationStatus.SUCCEEDED
    outside = [w for w in warned if "put @defer under @durable_execution" in str(w.message)]
    assert len(outside) == 1  # the documented limit, said once, not a silent one
    assert len(drain_queue(res.queue_url, 2, timeout=5)) == 2  # once per invocation: what the guard prevents
