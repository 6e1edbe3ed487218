"""defer.sfn with a name the caller reuses for another input: Step Functions refuses the second
start with ExecutionAlreadyExists, which the sink counted as delivered (it is how a redelivered
item's start looks): a start the caller asked for, with its own input, never happened and
nothing said so. Fixed by 6e3584a (the item is dead-lettered); this test asks only that it is
not silent. Real engine and botocore over HTTP to moto server."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid

from handler_lib import config as cfg
from handler_lib import defer
from handler_lib._inline import make_drainer
from handler_lib.testing import capture
from tests.support.moto_server import client, drain_queue

PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


def test_a_reused_execution_name_with_another_input_is_not_dropped_silently(aws_resources, moto_endpoint, caplog):
    res = aws_resources()
    os.environ.update({"AWS_ENDPOINT_URL": moto_endpoint, "DEFER_DLQ_URL": res.dlq_url})
    sfn = client("stepfunctions", moto_endpoint)
    arn = sfn.create_state_machine(name=f"sm-{uuid.uuid4().hex[:10]}", definition=PASS,
                                   roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
    with capture() as items:
        defer.sfn(arn, {"order": 1, "amount": 10}, name="order-1")
    with capture() as again:
        defer.sfn(arn, {"order": 1, "amount": 99}, name="order-1")  # a later request, new input
    for batch in (list(items), list(again)):
        drainer = make_drainer(cfg.load())
        for item in batch:
            drainer.queue.add(item)
        with caplog.at_level(logging.WARNING):
            drainer.drain(time.monotonic() + 10)
    inputs = [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
              for e in sfn.list_executions(stateMachineArn=arn)["executions"]]
    assert inputs == [{"order": 1, "amount": 10}]  # Step Functions kept the first
    letters = drain_queue(res.dlq_url, 1, timeout=2)
    said = [r.getMessage() for r in caplog.records if "order-1" in r.getMessage()]
    assert letters or said, "the second start was dropped with no letter and no log line"
