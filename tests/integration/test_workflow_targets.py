"""defer.invoke / defer.sfn / defer.callback through the real engine and botocore over HTTP:
Lambda calls to the recording endpoint (tests/support/lambda_endpoint.py, reached by
AWS_ENDPOINT_URL_LAMBDA), Step Functions to moto server, dead letters to moto's SQS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from handler_lib import config as cfg
from handler_lib import defer
from handler_lib._inline import make_drainer
from handler_lib.testing import capture
from tests.support.lambda_endpoint import LambdaEndpoint
from tests.support.moto_server import client, drain_queue

REPO_ROOT = Path(__file__).resolve().parents[2]
PASS_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture
def lambda_api():
    endpoint = LambdaEndpoint().start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture
def env(aws_resources, lambda_api, moto_endpoint):
    res = aws_resources()
    os.environ.update({"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ENDPOINT_URL_LAMBDA": lambda_api.endpoint_url,
                       "DEFER_DLQ_URL": res.dlq_url})
    return res, lambda_api


def deferred(calls):
    """The items ``calls()`` defers, built by the public API."""
    with capture() as items:
        calls()
    return list(items)


def drain(items, budget_s: float = 15.0):
    drainer = make_drainer(cfg.load())
    for item in items:
        drainer.queue.add(item)
    return drainer.drain(time.monotonic() + budget_s)


def state_machine(moto_endpoint: str) -> str:
    sfn = client("stepfunctions", moto_endpoint)
    return sfn.create_state_machine(name=f"sm-{uuid.uuid4().hex[:10]}", definition=PASS_DEFINITION,
                                    roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]


def test_an_invoke_is_an_event_named_for_durable_execution_with_its_tenant(env):
    _, api = env
    api.add_function("billing", durable=True)
    items = deferred(lambda: (defer.invoke("billing", {"order": 1}, qualifier="live", tenant_id="acme"),
                              defer.invoke("billing", {"order": 2}, durable_name="order-2")))
    report = drain(items)
    assert report.delivered == 2 and report.dead_lettered == 0
    by_name = {r.header("X-Amz-Durable-Execution-Name"): r for r in api.of("Invoke")}  # sent side by side
    first, second = by_name[items[0].id], by_name["order-2"]
    assert first.header("X-Amz-Invocation-Type") == "Event" and first.query == {"Qualifier": "live"}
    assert first.header("X-Amz-Durable-Execution-Name") == items[0].id  # the defer_id, name-shaped
    assert first.header("X-Amz-Tenant-Id") == "acme" and json.loads(first.body) == {"order": 1}
    assert second.header("X-Amz-Durable-Execution-Name") == "order-2"
    assert second.header("X-Amz-Tenant-Id") is None
    assert set(api.executions("billing")) == {items[0].id, "order-2"}


def test_a_second_delivery_of_an_invoke_starts_no_second_durable_execution(env):
    _, api = env
    api.add_function("workflow", durable=True)
    (item,) = deferred(lambda: defer.invoke("workflow", {"n": 1}))
    assert drain([item]).delivered == 1
    assert drain([item]).delivered == 1  # at-least-once: the same item again
    assert len(api.of("Invoke")) == 2 and list(api.executions("workflow")) == [item.id]


def test_a_throttled_or_failing_invoke_is_retried_until_it_goes_through(env):
    res, api = env
    api.add_function("busy")
    api.throttle(2)
    api.fail(1, 500, "ServiceException")
    report = drain(deferred(lambda: defer.invoke("busy", {"n": 1})))
    assert report.delivered == 1 and report.dead_lettered == 0
    assert [r.status for r in api.of("Invoke")] == [429, 429, 500, 202]
    assert drain_queue(res.dlq_url, 0, timeout=0.5) == []


def test_a_missing_function_is_dead_lettered_with_the_reason(env):
    res, api = env
    (item,) = deferred(lambda: defer.invoke("no-such-function", {"n": 1}))
    report = drain([item])
    assert report.dead_lettered == 1 and report.delivered == 0
    (letter,) = drain_queue(res.dlq_url, 1, timeout=3)
    assert letter["id"] == item.id and letter["kind"] == "invoke" and letter["target"] == "no-such-function"
    assert letter["error"]["code"] == "ResourceNotFoundException"
    assert "Function not found" in letter["error"]["message"] and "no-such-function" in letter["error"]["message"]
    assert letter["attempts"] == 1  # not worth a retry


def test_a_plain_function_that_refuses_the_execution_name_is_invoked_without_it(env):
    res, api = env
    api.add_function("plain", refuses_name=True)
    items = deferred(lambda: [defer.invoke("plain", {"n": n}) for n in range(2)])
    report = drain(items[:1])
    assert report.delivered == 1
    assert drain(items[1:]).delivered == 1  # another drainer: it learns again, once
    names = [r.header("X-Amz-Durable-Execution-Name") for r in api.of("Invoke")]
    assert [r.status for r in api.of("Invoke")] == [400, 202, 400, 202] and names[1] is None


def test_a_name_the_caller_gave_is_never_dropped(env):
    res, api = env
    api.add_function("plain", refuses_name=True)
    (item,) = deferred(lambda: defer.invoke("plain", {"n": 1}, durable_name="must-be-durable"))
    assert drain([item]).dead_lettered == 1
    (letter,) = drain_queue(res.dlq_url, 1, timeout=3)
    assert letter["error"]["code"] == "InvalidParameterValueException" and "DurableExecutionName" in letter["error"]["message"]


def test_a_step_functions_execution_is_named_by_the_item_and_a_redelivery_is_not_a_failure(env, moto_endpoint):
    res, _ = env
    arn = state_machine(moto_endpoint)
    sfn = client("stepfunctions", moto_endpoint)
    (item,) = deferred(lambda: defer.sfn(arn, {"order": 7}))
    assert drain([item]).delivered == 1
    (execution,) = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert execution["name"] == item.id
    assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"]) == {"order": 7}
    assert drain([item]).delivered == 1  # the execution still runs: Step Functions returns it
    sfn.stop_execution(executionArn=execution["executionArn"])
    report = drain([item])  # closed now: ExecutionAlreadyExists, which means it was started
    assert report.delivered == 1 and report.dead_lettered == 0
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
    assert drain_queue(res.dlq_url, 0, timeout=0.5) == []


def test_a_missing_state_machine_is_dead_lettered(env, moto_endpoint):
    res, _ = env
    arn = state_machine(moto_endpoint).rsplit(":", 1)[0] + ":missing"
    assert drain(deferred(lambda: defer.sfn(arn, {"n": 1}, name="named"))).dead_lettered == 1
    (letter,) = drain_queue(res.dlq_url, 1, timeout=3)
    assert letter["error"]["code"] == "StateMachineDoesNotExist" and letter["item"]["name"] == "named"


def test_callbacks_complete_with_a_result_or_an_error(env):
    res, api = env
    api.add_function("unused")
    api.add_callback("cb/ok+1==")
    api.add_callback("cb2")
    report = drain(deferred(lambda: (defer.callback("cb/ok+1==", result={"approved": True}),
                                     defer.callback("cb2", error=PermissionError("rejected by a person")),
                                     defer.callback("gone", result="null"))))
    assert report.delivered == 2 and report.dead_lettered == 1
    assert api.completed["cb/ok+1=="] == ("success", b'{"approved":true}')
    assert api.completed["cb2"] == ("failure", {"ErrorType": "PermissionError", "ErrorMessage": "rejected by a person"})
    (letter,) = drain_queue(res.dlq_url, 1, timeout=3)
    assert letter["kind"] == "callback" and letter["error"]["code"] == "ResourceNotFoundException"


def test_payloads_and_names_at_their_limits_arrive_whole(env, moto_endpoint):
    _, api = env
    api.add_function("big", durable=True)
    api.add_callback("Y2I=")
    arn = state_machine(moto_endpoint)
    pad = len('{"x":""}')
    items = deferred(lambda: (
        defer.invoke("big", {"x": "é" * ((1_048_576 - pad) // 2)}),  # 1 MiB of 2-byte characters
        defer.invoke("big", {"x": "y" * (262_144 - pad)}, durable_name="n" * 64),
        defer.callback("Y2I=", result={"x": "z" * (1_048_576 - pad)}),
        defer.sfn(arn, {"x": "w" * (262_144 - pad)}, name="s" * 80)))
    report = drain(items)
    assert report.delivered == 4 and report.dead_lettered == 0
    by_name = {r.header("X-Amz-Durable-Execution-Name"): r for r in api.of("Invoke")}  # sent side by side
    first, second = by_name[items[0].id], by_name["n" * 64]
    assert len(first.body) == 1_048_576 and first.body.decode() == items[0].payload
    assert second.header("X-Amz-Durable-Execution-Name") == "n" * 64 and len(second.body) == 262_144
    assert len(api.completed["Y2I="][1]) == 1_048_576
    sfn = client("stepfunctions", moto_endpoint)
    (execution,) = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert execution["name"] == "s" * 80


def test_a_dead_lettered_invoke_is_redriven_once_the_function_exists(env):
    res, api = env
    (item,) = deferred(lambda: defer.invoke("late-function", {"n": 1}))
    assert drain([item]).dead_lettered == 1
    api.add_function("late-function", durable=True)
    out = subprocess.run([sys.executable, "-m", "handler_lib.redrive", "--dlq", res.dlq_url], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert out.returncode == 0 and f"redriven {item.id}" in out.stdout, out.stdout + out.stderr
    assert list(api.executions("late-function")) == [item.id]  # the same item: the same name


def test_a_forged_item_botocore_refuses_is_dead_lettered_not_retried_forever(env):
    res, api = env
    from handler_lib import wire

    forged = wire.SfnItem(f"forged-{uuid.uuid4().hex[:8]}", "req", time.time_ns() // 1000,
                          "arn:aws:states:us-east-1:123456789012:stateMachine:x", "{}", "")  # name: 1-80
    report = drain([forged], budget_s=5)
    assert report.dead_lettered == 1 and report.delivered == 0
    (letter,) = drain_queue(res.dlq_url, 1, timeout=3)
    assert letter["error"]["code"] == "Defer.InvalidRequest" and "name" in letter["error"]["message"]
