"""A process that delivered inline (its own delivery engine: a pool of send threads, clients
with open connections) and then forks: the child's deferred work must go out from the child.
The child inherited the engine with the parent's pool, whose threads stayed in the parent,
so the child's batch waited for a worker that does not exist: found by the attack machine
(a forked child under a stopped extension held its invoke past the deadline). Real
processes, moto's SQS; the child is given a bound, then killed, never waited on forever."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import boto3

SCRIPT = textwrap.dedent('''
    import os, sys, time
    from types import SimpleNamespace
    from handler_lib import defer

    QUEUE = os.environ["TEST_QUEUE_URL"]

    @defer
    def handler(event, context):
        defer.sqs(QUEUE, {"who": event["who"]})
        return "ok"

    context = SimpleNamespace(aws_request_id="r1", get_remaining_time_in_millis=lambda: 10_000,
                              function_name="f", invoked_function_arn="arn")
    handler({"who": "parent"}, context)  # inline: the engine and its send pool now exist
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            defer.sqs(QUEUE, {"who": "child"})  # a child holds no invoke: inline at once
        finally:
            os._exit(0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print(f"child took {time.monotonic() - started:.1f} s", flush=True)
            print("child ended", os.waitstatus_to_exitcode(status), flush=True)
            sys.exit(0)
        time.sleep(0.05)
    os.kill(pid, 9)
    print("child hung", flush=True)
    sys.exit(1)
''')


def _bodies(queue_url: str, expected: int, timeout: float = 10.0) -> list[Any]:
    sqs = boto3.client("sqs")
    found: list[Any] = []
    until = time.monotonic() + timeout
    while len(found) < expected and time.monotonic() < until:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        found += [json.loads(m["Body"]) for m in got]
        if got:
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        else:
            time.sleep(0.1)
    return found


def test_a_child_forked_after_an_inline_delivery_delivers_its_own_items(aws_resources: Any, tmp_path: Any) -> None:
    res = aws_resources()
    env = {**os.environ, **res.env(), "DEFER_MODE": "inline", "DEFER_SOCKET": str(tmp_path / "none.sock"),
           "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().splitlines()[-1:] == ["child ended 0"], proc.stdout + proc.stderr
    took = float(proc.stdout.split("child took ")[1].split()[0])
    assert took < 3.0, proc.stdout + proc.stderr  # one call to moto; not the inline budget (9 s)
    assert sorted(b["who"] for b in _bodies(res.queue_url, 2)) == ["child", "parent"]


OUTLIVING = textwrap.dedent('''
    import os, sys, time
    from types import SimpleNamespace
    from handler_lib import defer

    QUEUE = os.environ["TEST_QUEUE_URL"]
    deadline = time.monotonic() + 1.0  # the invoke has 1 s

    @defer
    def handler(event, context):
        pid = os.fork()  # a worker that outlives the invoke (a pool's, say)
        if pid == 0:
            try:
                time.sleep(1.5)  # past the parent's deadline
                defer.sqs(QUEUE, {"who": "late child"})
            finally:
                os._exit(0)
        return pid

    context = SimpleNamespace(aws_request_id="r2", function_name="f", invoked_function_arn="arn",
                              get_remaining_time_in_millis=lambda: int((deadline - time.monotonic()) * 1000))
    child = handler({}, context)
    os.waitpid(child, 0)
    print("child ended", flush=True)
''')


def test_a_child_that_outlives_the_invoke_it_was_forked_in_still_delivers(aws_resources: Any, tmp_path: Any) -> None:
    """Its waits and inline work end with its parent's invoke only while that invoke lasts:
    past it, the child delivers as any process outside an invoke (it gave everything up)."""
    res = aws_resources()
    env = {**os.environ, **res.env(), "DEFER_MODE": "inline", "DEFER_SOCKET": str(tmp_path / "none.sock"),
           "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", OUTLIVING], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().splitlines()[-1:] == ["child ended"], proc.stdout + proc.stderr
    assert [b["who"] for b in _bodies(res.queue_url, 1)] == ["late child"], proc.stderr
