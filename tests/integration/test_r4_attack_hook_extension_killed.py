"""SIGKILL of the defer-runner extension while a @defer.every hook runs after a response:
nothing the handler or the hook deferred is lost (the function delivers what the extension
did not confirm), and the environment serves the next invoke. Sandbox, built layer, moto."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, List

import boto3

from lambda_sandbox import Sandbox
from tests.support.waiting import wait_until

FUNCTION = Path(__file__).parent / "functions" / "r4_hook_killed"


def _extension_pid(box: Sandbox) -> int:
    for pid in box.pids():
        try:
            if b"bootstrap.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    raise AssertionError("defer-runner process not found")


def test_killing_the_extension_while_a_hook_runs_loses_nothing(built_layer, aws_resources, tmp_path):
    res = aws_resources()
    env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "fn.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, FUNCTION, "app.handler", timeout_s=10, env=env).start()
    try:
        first = box.invoke({"n": 1})
        assert first.status == 200
        box.wait_for_log("hook deferred", timeout=5)
        os.kill(_extension_pid(box), signal.SIGKILL)
        box.wait_for_report(first.request_id, timeout=15)
        second = box.invoke({"n": 2})
        assert second.status == 200 and second.function_error is None, second.body
        box.wait_for_report(second.request_id, timeout=15)
        sqs = boto3.client("sqs")
        seen: List[Any] = []

        def all_there() -> bool:
            got = sqs.receive_message(QueueUrl=res.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            seen.extend(json.loads(m["Body"]) for m in got.get("Messages", []))
            return {json.dumps(b, sort_keys=True) for b in seen} >= {
                json.dumps(b, sort_keys=True) for b in ({"from": "hook"}, {"from": "hook-late"},
                                                       {"from": "handler", "n": 1}, {"from": "handler", "n": 2})}

        wait_until(all_there, 15, message=f"messages missing; seen {seen}")
    finally:
        box.stop()
