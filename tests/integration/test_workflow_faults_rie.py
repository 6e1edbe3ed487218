"""The fault battery on the workflow targets, under RIE with the built layer: the extension
delivers defer.invoke / sfn / callback through throttling, and a Step Functions start whose
outcome was never recorded (the extension killed while the reply is held) is started once."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from tests.integration.test_faults_rie import extension_pid
from tests.integration.test_workflow_targets import state_machine
from tests.support.lambda_endpoint import LambdaEndpoint
from tests.support.moto_server import client, drain_queue
from tests.support.waiting import wait_until

FUNCTION_DIR = Path(__file__).parent / "functions" / "workflows"


@pytest.fixture
def workflows(rie_function):
    start_function, res, proxy = rie_function
    api = LambdaEndpoint().start()
    try:
        yield (lambda **env: start_function(FUNCTION_DIR, 10, AWS_ENDPOINT_URL_LAMBDA=api.endpoint_url, **env)), \
            res, proxy, api
    finally:
        api.stop()


def test_throttled_invokes_and_callbacks_are_retried_by_the_extension(workflows):
    start, res, _, api = workflows
    rie = start()
    api.add_function("orders", durable=True)
    api.add_callback("cb1")
    api.throttle(3)
    status, body, _ = rie.invoke({"tag": "t", "function": "orders", "invoke": 4, "callbacks": ["cb1"]})
    assert status == 200
    wait_until(lambda: len(api.executions("orders")) == 4 and "cb1" in api.completed, 10,
               message=lambda: f"seen: {[(r.operation, r.status) for r in api.requests]}")
    ids = json.loads(body)["ids"]
    assert sorted(api.executions("orders")) == sorted(ids[:4])  # each started under its defer_id
    assert all(r.header("X-Amz-Invocation-Type") == "Event" for r in api.of("Invoke"))
    assert sum(r.status == 429 for r in api.requests) == 3
    assert drain_queue(res.dlq_url, 0, timeout=0.5) == []


def test_a_start_redelivered_after_a_kill_starts_no_second_execution(workflows, tmp_path, moto_endpoint):
    start, res, proxy, _ = workflows
    arn = state_machine(moto_endpoint)
    sfn = client("stepfunctions", moto_endpoint)
    rie = start()
    rie.invoke({"tag": "warm"})  # the extension is launched on the first invoke
    proxy.set_latency(3.0, "StartExecution")  # the reply is held; the call reaches moto after it
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", rie.invoke(
        {"tag": "kill", "state_machine": arn, "sfn": 3})))
    thread.start()
    wait_until(lambda: len(proxy.raw_requests("StartExecution")) >= 3, 10,
               message="the drain never called StartExecution")
    os.kill(extension_pid(str(tmp_path / "defer.sock")), signal.SIGKILL)  # before any outcome is journaled
    thread.join(15)
    wait_until(lambda: len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 3, 10,
               message="the held calls never reached Step Functions")
    proxy.clear()
    status, _, _ = rie.invoke({"tag": "next"})  # reset, re-init: the journal is replayed and sent again
    assert status == 200
    assert '"replayed":3' in rie.logs().replace(" ", "")
    wait_until(lambda: len(proxy.raw_requests("StartExecution")) >= 6, 10, message="the replayed items were not sent")
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    ids = sorted(e["name"] for e in executions)
    assert len(executions) == 3 and len(set(ids)) == 3  # one execution per item, named by it
    assert drain_queue(res.dlq_url, 0, timeout=1) == []  # and the second delivery was no failure
