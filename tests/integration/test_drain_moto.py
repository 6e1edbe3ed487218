"""The drain against real boto3 and moto through the fault proxy: FIFO order under faults,
dead letters that always fit the DLQ, and redrive (in this process and as the command)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handler_lib._inline import make_drainer
from handler_lib import config as cfg
from handler_lib import wire
from tests.support.moto_server import client, drain_messages, drain_queue

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(aws_resources, fault_proxy):
    res = aws_resources()
    os.environ.update({"AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_DLQ_URL": res.dlq_url})
    return res, fault_proxy


def sqs_items(url: str, n: int, *, group: str | None = None, body=lambda k: json.dumps({"n": k})):
    return [wire.SqsItem(f"it{k}-{time.monotonic_ns()}", "req", time.time_ns() // 1000, url, body(k), group)
            for k in range(n)]


def drain(items, budget_s: float = 15.0):
    drainer = make_drainer(cfg.load())
    for item in items:
        drainer.queue.add(item)
    return drainer, drainer.drain(time.monotonic() + budget_s)


@pytest.mark.parametrize("faults", ["none", "throttles-and-failed-calls"])
def test_a_fifo_group_arrives_in_call_order(env, faults):
    res, proxy = env
    if faults != "none":
        proxy.throttle("SendMessageBatch", calls=2)
        proxy.error("SendMessageBatch", "InternalError", 500, calls=1)
        proxy.fail_entries("SendMessageBatch", calls=2)  # every entry of the call fails
        proxy.fail_entries("SendMessageBatch", indexes={9}, calls=1)  # the batch's last entry
    _, report = drain(sqs_items(res.fifo_queue_url, 25, group="g1"))
    assert report.delivered == 25 and report.dead_lettered == 0
    got = [json.loads(m["Body"])["n"] for m in drain_messages(res.fifo_queue_url, 25, timeout=5)]
    assert got == list(range(25))  # the old drain: [10..19, 0..6, 20, 21, 22, 7, 8, 9, 23, 24]
    if faults != "none":
        assert proxy.count("SendMessageBatch") >= 3 + 5


def test_groups_stay_parallel_and_each_keeps_its_order(env):
    res, proxy = env
    items = [item for k in range(12) for item in sqs_items(res.fifo_queue_url, 1, group=f"g{k % 3}",
                                                             body=lambda _, k=k: json.dumps({"n": k}))]
    _, report = drain(items)
    assert report.delivered == 12
    assert proxy.count("SendMessageBatch") == 4  # one item of each group per call, 3 groups per call
    bodies = [json.loads(m["Body"]) for m in drain_messages(res.fifo_queue_url, 12, timeout=5)]
    for g in range(3):
        assert [b["n"] for b in bodies if b["n"] % 3 == g] == list(range(g, 12, 3))


def test_a_600_kb_item_of_accented_text_is_dead_lettered_within_the_dlq_limit(env):
    res, proxy = env
    missing = res.queue_url + "-missing"
    (item,) = sqs_items(missing, 1, body=lambda k: "é" * 300_000)  # 600,000 bytes of UTF-8
    _, report = drain([item])
    assert report.dead_lettered == 1 and report.given_up == 0
    (letter,) = drain_queue(res.dlq_url, 1, timeout=3)
    assert letter["id"] == item.id and letter["item"]["body"] == item.body  # whole: no \u00e9 escapes
    assert "truncated" not in letter


def test_a_letter_too_large_for_the_dlq_is_truncated_and_says_so(env):
    res, proxy = env
    missing = res.queue_url + "-missing"
    body = '"' * 500_000 + "é" * 50_000  # 600,000 bytes; JSON escapes each '"' to 2 bytes
    (item,) = sqs_items(missing, 1, body=lambda k: body)
    _, report = drain([item])
    assert report.dead_lettered == 1
    (message,) = drain_messages(res.dlq_url, 1, timeout=3)
    assert len(message["Body"].encode()) <= 1_048_576
    letter = json.loads(message["Body"])
    assert letter["truncated"] is True and letter["payload_bytes"] == len(body.encode())
    import hashlib
    assert letter["payload_sha256"] == hashlib.sha256(body.encode()).hexdigest()
    assert body.startswith(letter["item"]["body"]) and len(letter["item"]["body"]) > 100_000


def redrive_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handler_lib.redrive", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))


def test_redrive_sends_dead_letters_back_with_their_original_ids(env):
    res, proxy = env
    sqs = client("sqs", res.endpoint_url)
    name = f"{res.prefix}-late.fifo"
    late_url = res.fifo_queue_url.rsplit("/", 1)[0] + "/" + name  # not created yet
    items = sqs_items(late_url, 3, group="g")
    _, report = drain(items)
    assert report.dead_lettered == 3
    dry = redrive_cli("--dlq", res.dlq_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would redrive") == 3
    still = redrive_cli("--dlq", res.dlq_url)  # the queue is still missing: the letters stay
    assert still.returncode == 1 and still.stdout.count("failed again") == 3, still.stdout + still.stderr
    sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})
    done = redrive_cli("--dlq", res.dlq_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("redriven ") == 3
    got = drain_messages(late_url, 3, timeout=3)
    assert [m["Attributes"]["MessageDeduplicationId"] for m in got] == [i.id for i in items]
    assert [json.loads(m["Body"])["n"] for m in got] == [0, 1, 2]
    assert drain_queue(res.dlq_url, 0, timeout=1.5) == []


def test_redrive_refuses_a_truncated_letter_and_leaves_it(env):
    res, proxy = env
    (item,) = sqs_items(res.queue_url + "-missing", 1, body=lambda k: '"' * 600_000)
    drain([item])
    out = redrive_cli("--dlq", res.dlq_url, "--id", item.id)
    assert out.returncode == 1 and f"refused {item.id}: its payload was truncated" in out.stdout
    assert len(drain_queue(res.dlq_url, 1, timeout=3)) == 1  # visible again at once, not deleted


def test_a_fifo_entry_that_fails_is_not_overtaken_by_a_later_one_of_its_group(env):
    """SQS reports a batch's entries one by one: had a group's items shared a call, the
    first failing while the rest landed would have let them overtake it (the attack machine
    found that); a group sends one item per call, while other groups share the batch."""
    res, proxy = env
    proxy.fail_entries("SendMessageBatch", indexes={0}, calls=2)  # the first entry of two calls
    items = [*sqs_items(res.fifo_queue_url, 5, group="g-one"), *sqs_items(res.fifo_queue_url, 5, group="g-two")]
    items = [items[i // 2 + 5 * (i % 2)] for i in range(10)]  # interleaved: one, two, one, two, ...
    _, report = drain(items)
    assert report.delivered == 10
    got = [m["Attributes"]["MessageDeduplicationId"] for m in drain_messages(res.fifo_queue_url, 10, timeout=5)]
    for group in ("g-one", "g-two"):
        mine = [i.id for i in items if i.group_id == group]
        assert [i for i in got if i in mine] == mine
    calls = [r for r in proxy.requests if r.action == "SendMessageBatch"]
    assert max(r.entries for r in calls) == 2  # one of each group per call, both groups in it


def test_a_fifo_group_carried_over_an_outage_keeps_its_order(env):
    res, proxy = env
    proxy.refuse_connections()
    drainer, report = drain(sqs_items(res.fifo_queue_url, 25, group="g-late"), budget_s=0.5)
    assert report.carried_over + report.in_flight == 25 and report.delivered == 0
    proxy.accept_connections()
    more = sqs_items(res.fifo_queue_url, 5, group="g-late", body=lambda k: json.dumps({"n": 25 + k}))
    for item in more:  # deferred by the next invoke, behind the carried-over ones
        drainer.queue.add(item)
    report = drainer.drain(time.monotonic() + 15)
    assert len(drainer.queue) == 0 and report.dead_lettered == 0
    got = [json.loads(m["Body"])["n"] for m in drain_messages(res.fifo_queue_url, 30, timeout=5)]
    assert got == list(range(30))


def test_a_failed_task_whose_arguments_have_bytes_keys_is_dead_lettered(env):
    # msgpack carries {b"k": ...} in task arguments, JSON has no bytes keys: the letter must still be made
    res, proxy = env
    item = wire.TaskItem(f"task-{time.monotonic_ns()}", "req", time.time_ns() // 1000, "tests.no_such_module:f",
                         [{b"\x00k": 1}], {"opts": {b"v": b"\xff"}}, max_attempts=1)
    drainer, report = drain([item], budget_s=5)
    assert report.dead_lettered == 1 and len(drainer.queue) == 0, report  # not stuck in flight
    (letter,) = drain_queue(res.dlq_url, 1, timeout=3)
    assert letter["id"] == item.id and letter["item"]["args"] == [{"base64:AGs=": 1}]
