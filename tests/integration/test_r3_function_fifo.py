"""Within a FIFO group (target and group id) the function never lets an item overtake an
earlier one: what it delivers itself goes in deferral order, and while the extension holds the
group's earlier items, later ones go to it too (not inline, where they would overtake them).

Sequences are compared as they arrive, never sorted. The "extension" is the real channel
reader in a process of its own (tests/support/channel_host) or, where it must deliver, the
real extension of the built layer in the sandbox; the queues are moto's FIFO queues.
"""
from __future__ import annotations

import textwrap
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, List

import pytest

from lambda_sandbox import Sandbox
from tests.support import channel_host
from tests.support.moto_server import drain_queue


def _sequence(queue_url: str, count: int, timeout: float = 10) -> List[Any]:
    return [b["n"] for b in drain_queue(queue_url, count, timeout=timeout)]


def test_a_group_whose_extension_died_mid_invoke_arrives_in_deferral_order(tmp_path, aws_resources, monkeypatch):
    from handler_lib import defer
    from handler_lib._dispatch import DISPATCHER

    res = aws_resources()
    sock = str(tmp_path / "defer.sock")
    reader = channel_host.spawn(sock)
    monkeypatch.setenv("DEFER_SOCKET", sock)
    DISPATCHER.reset()

    @defer
    def handler(event, context):
        for n in range(3):  # read by the extension, which then dies with them
            defer.sqs(res.fifo_queue_url, {"n": n}, group_id="g")
        reader.kill()
        reader.wait()
        for n in range(3, 6):  # no extension any more: these go inline
            defer.sqs(res.fifo_queue_url, {"n": n}, group_id="g")
        return "ok"

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            assert handler({}, SimpleNamespace(aws_request_id="died")) == "ok"
        assert _sequence(res.fifo_queue_url, 6) == [0, 1, 2, 3, 4, 5]
    finally:
        DISPATCHER.reset()


def test_a_group_is_in_order_across_post_response_work_when_the_extension_died(tmp_path, aws_resources, monkeypatch):
    """The same when the invoke ends on its post-response thread (its end marker waits for the work)."""
    from handler_lib import defer
    from handler_lib._dispatch import DISPATCHER

    res = aws_resources()
    sock = str(tmp_path / "defer.sock")
    reader = channel_host.spawn(sock)
    monkeypatch.setenv("DEFER_SOCKET", sock)
    DISPATCHER.reset()
    finished = []

    def work() -> None:
        reader.kill()
        reader.wait()
        for n in range(3, 6):
            defer.sqs(res.fifo_queue_url, {"n": n}, group_id="g")
        finished.append(True)

    @defer
    def handler(event, context):
        for n in range(3):
            defer.sqs(res.fifo_queue_url, {"n": n}, group_id="g")
        defer.after(work)
        return "ok"

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            assert handler({}, SimpleNamespace(aws_request_id="died-after")) == "ok"
            assert _sequence(res.fifo_queue_url, 6) == [0, 1, 2, 3, 4, 5]
        assert finished
    finally:
        DISPATCHER.reset()


APP = textwrap.dedent("""
    import os
    from handler_lib import defer

    @defer
    def handler(event, context):
        for n in range(event["start"], event["start"] + event["count"]):  # 100 KB each
            defer.sqs(os.environ["TEST_FIFO_QUEUE_URL"], {"n": n, "pad": "x" * 100_000}, group_id="g")
        return {"ok": True}
""")


def test_a_group_whose_earlier_items_the_extension_holds_is_not_overtaken_while_it_is_over_its_bound(
        built_layer, aws_resources, fault_proxy, tmp_path):
    task = tmp_path / "fn"
    task.mkdir()
    (task / "app.py").write_text(APP)
    res = aws_resources()
    env = {**res.env(), "AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_MAX_QUEUED_MB": "1",
           "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, task, "app.handler", timeout_s=3, env=env, echo=False).start()
    try:
        # GIVEN an extension holding items 0..10 of the group (1.1 MB, over its 1 MiB bound): SQS
        # throttled them through the first invoke, so they are carried over, backing off
        fault_proxy.throttle("SendMessageBatch")
        first = box.invoke({"start": 0, "count": 11})
        assert first.status == 200, first.body
        box.wait_for_report(first.request_id)
        fault_proxy.clear()
        # WHEN the next invoke defers 11..16 into the same group
        second = box.invoke({"start": 11, "count": 6})
        assert second.status == 200, second.body
        # THEN the group arrives in deferral order (what still backs off from the throttling,
        # up to seconds, goes with a later invoke: a frozen environment delivers nothing)
        got: List[Any] = []
        until = time.monotonic() + 30
        while len(got) < 17 and time.monotonic() < until:
            got += _sequence(res.fifo_queue_url, 17 - len(got), timeout=2)
            if len(got) < 17:
                assert box.invoke({"start": 0, "count": 0}).status == 200
        assert got == list(range(17))
    finally:
        box.stop()
