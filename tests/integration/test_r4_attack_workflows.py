"""Round-4 attacks on defer.invoke / defer.sfn: duplicate names and the sinks' rules for
"already done", through the real engine and botocore over HTTP (moto server for Step
Functions and SQS, the recording Lambda endpoint for Invoke)."""

from __future__ import annotations

import json

import pytest

from handler_lib import defer
from tests.integration.test_workflow_targets import deferred, drain, env, lambda_api, state_machine  # noqa: F401
from tests.support.moto_server import client, drain_queue


def test_r4_a_start_refused_for_a_name_taken_by_another_input_is_not_delivered(env, moto_endpoint):  # noqa: F811
    """A name the caller gave, taken by an execution of another input: ExecutionAlreadyExists
    must not count as delivered (it was, silently: found by the fourth attack)."""
    res, _ = env
    arn = state_machine(moto_endpoint)
    sfn = client("stepfunctions", moto_endpoint)
    first, second = deferred(lambda: (defer.sfn(arn, {"order": 1, "total": 10}, name="order-1"),
                                      defer.sfn(arn, {"order": 1, "total": 99}, name="order-1")))
    assert drain([first]).delivered == 1
    (execution,) = sfn.list_executions(stateMachineArn=arn)["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"])  # or still running: the same answer
    report = drain([second])
    # Nothing runs with {"total": 99}: the item is not delivered, so it must be dead-lettered.
    inputs = [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
              for e in sfn.list_executions(stateMachineArn=arn)["executions"]]
    assert inputs == [{"order": 1, "total": 10}]
    assert (report.delivered, report.dead_lettered) == (0, 1)
    (letter,) = drain_queue(res.dlq_url, 1, timeout=3)
    assert letter["id"] == second.id and letter["error"]["code"] == "ExecutionAlreadyExists"


@pytest.mark.xfail(strict=True, reason=(
    "the invoke sink takes any validation error whose message says 'durable' for 'this function is not "
    "durable': one such refusal from a durable function (here its input limit) drops the execution name "
    "from that item's retry and from every later invoke of the function in the process, so their "
    "redeliveries start second executions"))
def test_r4_one_durable_validation_error_does_not_make_a_durable_function_plain(env):  # noqa: F811
    _, api = env
    api.add_function("orders", durable=True)
    api.fail(1, 400, "InvalidParameterValueException",
             "The payload exceeds the 262144 byte limit for a durable execution's input.")
    first, second = deferred(lambda: (defer.invoke("orders", {"n": 1}), defer.invoke("orders", {"n": 2})))
    drain([first, second])  # one drainer, as in the extension: what it learns it keeps
    names = [r.header("X-Amz-Durable-Execution-Name") for r in api.of("Invoke")]
    # every request to the durable function carries its item's execution name, so each
    # execution is named by its item and a redelivery can start no second one
    assert None not in names, names
    assert set(api.executions("orders")) <= {first.id, second.id}


@pytest.mark.xfail(strict=True, reason=(
    "a callback completion delivered twice (at least once: the extension died after the call, before "
    "its journal mark) is dead-lettered on the second delivery: Lambda answers ResourceNotFoundException "
    "for a completed callback, so work that was done leaves a letter whose redrive can only fail again"))
def test_r4_a_redelivered_callback_completion_is_not_dead_lettered(env):  # noqa: F811
    res, api = env
    api.add_callback("Y2Iz")
    (item,) = deferred(lambda: defer.callback("Y2Iz", result={"approved": True}))
    assert drain([item]).delivered == 1
    assert api.completed["Y2Iz"] == ("success", b'{"approved":true}')
    report = drain([item])  # the same item again, as the journal replays it after a kill
    assert report.dead_lettered == 0
    assert drain_queue(res.dlq_url, 0, timeout=0.5) == []


def test_r4_a_redelivered_start_under_a_name_the_caller_gave_is_delivered_once(env, moto_endpoint):  # noqa: F811
    """The same name and the same input, the execution closed since: the start this item asked
    for happened, so the second delivery is not a failure (the input is read back)."""
    res, _ = env
    arn = state_machine(moto_endpoint)
    sfn = client("stepfunctions", moto_endpoint)
    (item,) = deferred(lambda: (defer.sfn(arn, {"order": 2}, name="order-2"),))
    assert drain([item]).delivered == 1
    (execution,) = sfn.list_executions(stateMachineArn=arn)["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"])
    report = drain([item])
    assert (report.delivered, report.dead_lettered) == (1, 0)
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
    assert drain_queue(res.dlq_url, 0, timeout=0.5) == []
