"""Round-4 attack on the durable replay guard, under the SDK's own local runner: a branch of
``context.parallel`` (or ``map``) runs on the SDK's executor threads, where the guard does
not see the replay; a child context on the handler's thread is guarded."""

from __future__ import annotations

import json
from typing import Any, List

import pytest
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration
from aws_durable_execution_sdk_python.execution import InvocationStatus
from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

from handler_lib import defer
from handler_lib.testing import capture

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"


def _run(handler: Any) -> List[str]:
    with capture() as deferred, DurableFunctionTestRunner(handler=handler) as runner:
        result = runner.run(input="{}", execution_timeout=30)
    assert result.status is InvocationStatus.SUCCEEDED
    return [json.loads(m.body)["where"] for m in deferred.sqs]


def test_r4_a_child_context_on_the_handlers_thread_defers_once_across_its_replay():
    def child(ctx: DurableContext) -> int:
        defer.sqs(QUEUE, {"where": "child, before its wait"})
        ctx.wait(Duration.from_seconds(1))
        return 1

    @durable_execution
    @defer
    def handler(event: Any, context: DurableContext) -> str:
        context.run_in_child_context(child)
        return "done"

    assert _run(handler) == ["child, before its wait"]


@pytest.mark.xfail(strict=True, reason=(
    "the replay guard reads the handler's DurableContext through a ContextVar set on the handler's "
    "thread; context.parallel/map run branches on the SDK's executor threads, where it is unset, so a "
    "branch that replays (it waited) sends what it deferred before its wait again"))
def test_r4_a_parallel_branch_defers_once_across_its_replay():
    replays: List[bool] = []

    def branch(ctx: DurableContext) -> int:
        replays.append(ctx.is_replaying())
        defer.sqs(QUEUE, {"where": "branch, before its wait"})
        ctx.wait(Duration.from_seconds(1))
        return 1

    @durable_execution
    @defer
    def handler(event: Any, context: DurableContext) -> str:
        context.parallel([branch])
        return "done"

    sent = _run(handler)
    assert replays == [False, True]  # the branch did replay, and its own context knew it
    assert sent == ["branch, before its wait"]
