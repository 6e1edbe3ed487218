"""A @defer.every hook that defers (defer.sqs, defer.after) behaves alike on Lambda on demand
and on Managed Instances, where hooks run between two requests in the runtime's thread.
Sandbox with the built layer, moto's SQS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List

import boto3
import pytest

from lambda_sandbox import Sandbox
from tests.support.waiting import wait_until

FUNCTION = Path(__file__).parent / "functions" / "r4_hook_defers"


def _start(built_layer: Path, res: Any, tmp_path: Path, **mode: Any) -> Sandbox:
    env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "fn.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal"),
           "AWS_LAMBDA_EXEC_WRAPPER": "/opt/defer-runner/exec-wrapper"}
    return Sandbox(built_layer, FUNCTION, "app.handler", timeout_s=10, env=env, **mode).start()


def _hook_messages(queue_url: str) -> List[Any]:
    got = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


@pytest.mark.parametrize("mode", [
    {},
    pytest.param({"mode": "managed-instances", "max_concurrency": 1}, marks=pytest.mark.xfail(
        strict=True, reason="on Managed Instances a hook runs outside any invoke: its defer.after raises "
                            "RuntimeError ('needs an invoke'), where on demand it runs as the invoke's work")),
], ids=["on-demand", "managed-instances"])
def test_a_hook_may_defer_a_message_and_post_response_work(built_layer, aws_resources, tmp_path, mode):
    res = aws_resources()
    box = _start(built_layer, res, tmp_path, **mode)
    try:
        pid = box.invoke({}).json()["pid"]
        box.invoke({})  # on Managed Instances the hook ran before this request was taken
        messages: List[Any] = []
        wait_until(lambda: messages.extend(_hook_messages(res.queue_url)) or messages, 10,
                   message="the hook's message never came")
        assert messages == [{"from": "hook", "pid": pid}]
        box.wait_for_log(f"after-of-hook {pid}", timeout=5)
        assert not [line.text for line in box.logs if "RuntimeError" in line.text]
    finally:
        box.stop()
