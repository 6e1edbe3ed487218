"""The walking skeleton, end to end under AWS's own emulator (RIE) with the built layer.

RIE answers an invoke only after every extension called next, so every deferred item
must already be delivered when the invoke returns: that is what these tests assert.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.moto_server import drain_messages, drain_queue

FUNCTION_DIR = Path(__file__).parent / "functions" / "shop"
PER_ORDER = 6  # items the shop handler defers per order


@pytest.fixture
def shop(rie_factory, built_layer, aws_resources, tmp_path):
    res = aws_resources()
    env = {**res.env(), "TASK_LOG": str(tmp_path / "tasks.log"),
           "DEFER_SOCKET": str(tmp_path / "defer.sock"),
           "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    rie = rie_factory(built_layer, FUNCTION_DIR, "app.handler", env=env, timeout_s=10)
    return rie, res, tmp_path / "tasks.log"


def _task_runs(log: Path) -> list:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_every_item_is_delivered_before_each_invoke_returns(shop):
    rie, res, task_log = shop
    handler_pids = set()
    for invoke in range(3):
        # WHEN the handler defers 2 orders' worth of side effects
        status, body, _ = rie.invoke({"invoke": invoke, "count": 2})
        assert status == 200, body
        reply = json.loads(json.loads(body)["body"])
        ids, handler_pids = reply["ids"], handler_pids | {reply["pid"]}
        assert len(ids) == 2 * PER_ORDER and len(set(ids)) == len(ids)
        expected = {f"{invoke}-0", f"{invoke}-1"}
        # THEN everything already landed: short bounded receives, no waiting for a later drain
        assert {m["order_id"] for m in drain_queue(res.queue_url, 2, timeout=2)} == expected
        assert {m["order_id"] for m in drain_queue(res.fifo_queue_url, 2, timeout=2)} == expected
        assert {m["order_id"] for m in drain_queue(res.topic_queue_url, 2, timeout=2)} == expected
        events = drain_queue(res.event_queue_url, 2, timeout=2)
        assert {e["detail"]["order_id"] for e in events} == expected
        assert {e["detail-type"] for e in events} == {"OrderCreated"}
        runs = [r for r in _task_runs(task_log) if r["order_id"] in expected]
        assert sorted(r["order_id"] for r in runs) == sorted([*expected, *expected])  # each task once
    # AND the tasks ran in the extension process, not inline in the function
    task_pids = {r["pid"] for r in _task_runs(task_log)}
    assert len(task_pids) == 1 and not task_pids & handler_pids
    assert len(_task_runs(task_log)) == 3 * 2 * 2


def test_fifo_items_carry_the_item_id_as_deduplication_id(shop):
    rie, res, _ = shop
    status, body, _ = rie.invoke({"invoke": "dedup", "count": 1})
    ids = json.loads(json.loads(body)["body"])["ids"]
    (message,) = drain_messages(res.fifo_queue_url, 1, timeout=2)
    assert message["Attributes"]["MessageDeduplicationId"] == ids[1]
    assert message["Attributes"]["MessageGroupId"] == "dedup-0"


def test_items_deferred_before_the_handler_raises_are_still_delivered(shop):
    rie, res, _ = shop
    status, body, _ = rie.invoke({"invoke": "boom", "count": 1, "raise_after_defer": True})
    assert status == 200 and b"handler failed after deferring" in body
    assert [m["order_id"] for m in drain_queue(res.queue_url, 1, timeout=2)] == ["boom-0"]


def test_a_task_that_keeps_failing_is_dead_lettered_with_its_error(shop):
    rie, res, _ = shop
    status, _, _ = rie.invoke({"invoke": "bad", "count": 0, "fail_task": True})
    assert status == 200
    (letter,) = drain_queue(res.dlq_url, 1, timeout=5)
    assert letter["kind"] == "task" and letter["attempts"] == 2
    assert letter["error"]["code"] == "Defer.TaskFailed"
    assert "cannot handle bad" in letter["error"]["message"]
    assert letter["item"]["fn"] == "app:always_fails"
