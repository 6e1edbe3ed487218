"""Post-response work (a ``defer.after`` callable, a ``@defer.every`` hook) that forks a child
which ends with ``sys.exit(0)``: the child must end there. The library turns a SystemExit of
post-response work into a failed run (there is nobody to raise it to): in a forked child that
kept the child going with the parent's invoke, running its remaining work a second time and
delivering its items again. Sandbox with the built layer, moto's SQS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import boto3
import pytest

from lambda_sandbox import Sandbox

FUNCTION = Path(__file__).parent / "functions" / "r4_fork_in_after"


@pytest.fixture
def box(request: Any, built_layer: Path, aws_resources: Any, tmp_path: Path) -> Iterator[Tuple[Sandbox, Any]]:
    res = aws_resources()
    hook = {"R4_FORKING_HOOK": "1"} if "hook" in request.node.name else {}
    env = {**res.env(), **hook, "DEFER_SOCKET": str(tmp_path / "fn.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    sandbox = Sandbox(built_layer, FUNCTION, "app.handler", timeout_s=10, env=env).start()
    try:
        yield sandbox, res
    finally:
        sandbox.stop()


def _bodies(queue_url: str) -> List[Any]:
    sqs = boto3.client("sqs")
    found: List[Any] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return found
        found += [json.loads(m["Body"]) for m in got]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])


def test_a_child_forked_by_post_response_work_does_not_run_the_rest_of_it(box):
    sandbox, res = box
    result = sandbox.invoke({"n": 1, "after": True})
    sandbox.wait_for_report(result.request_id)
    sandbox.invoke({"n": 2})  # the environment is thawed once more: anything left would show
    sandbox.wait_for_report(sandbox.reports[-1].request_id)
    runs = [line.split() for line in (sandbox.tmp_dir / "r4-after-runs.log").read_text().splitlines()]
    parent = runs[0][1]
    seconds = [pid for what, pid in runs if what == "second"]
    assert seconds == [parent], runs  # the parent's only: the child ended at its sys.exit


def test_a_child_forked_by_a_hook_does_not_deliver_the_invoke_s_items_again(box):
    sandbox, res = box
    for n in (1, 2):
        result = sandbox.invoke({"n": n})
        sandbox.wait_for_report(result.request_id)
    assert sorted(b["n"] for b in _bodies(res.queue_url)) == [1, 2]
