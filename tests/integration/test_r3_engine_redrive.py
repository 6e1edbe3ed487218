"""Redrive restores the item exactly, or refuses it; and says so when a letter is not deleted.

Letters are made by the drain against moto (through the fault proxy), then redriven by
``python -m handler_lib.redrive`` in a process of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgpack
import pytest

from handler_lib import config as cfg
from handler_lib import wire
from handler_lib._inline import make_drainer
from tests.support.moto_server import client, drain_messages, drain_queue

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(aws_resources, fault_proxy):
    res = aws_resources()
    os.environ.update({"AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_DLQ_URL": res.dlq_url})
    return res, fault_proxy


def dead_letter(items, budget_s: float = 15.0):
    drainer = make_drainer(cfg.load())
    for item in items:
        drainer.queue.add(item)
    report = drainer.drain(time.monotonic() + budget_s)
    assert report.dead_lettered == len(items), report
    return report


def redrive_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handler_lib.redrive", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def late_queue(res, name: str) -> str:
    return res.queue_url.rsplit("/", 1)[0] + "/" + f"{res.prefix}-{name}"  # not created yet


def test_redrive_restores_message_attributes_exactly(env):
    res, proxy = env
    url = late_queue(res, "late-attrs")
    attributes = {"blob": b"\x00\xff\x80binary", "count": 7, "ratio": 1.5, "label": "x"}
    item = wire.SqsItem(f"attrs-{time.monotonic_ns()}", "req", time.time_ns() // 1000, url, "body", None,
                        None, None, attributes)
    dead_letter([item])
    client("sqs", res.endpoint_url).create_queue(QueueName=url.rsplit("/", 1)[1])
    out = redrive_cli("--dlq", res.dlq_url)
    assert out.returncode == 0, out.stdout + out.stderr
    (message,) = drain_messages(url, 1, timeout=5)
    attrs = message["MessageAttributes"]
    assert attrs["blob"] == {"DataType": "Binary", "BinaryValue": b"\x00\xff\x80binary"}
    assert attrs["count"] == {"DataType": "Number", "StringValue": "7"}
    assert attrs["ratio"] == {"DataType": "Number", "StringValue": "1.5"}
    assert attrs["label"] == {"DataType": "String", "StringValue": "x"}
    assert attrs["defer_id"]["StringValue"] == item.id
    assert drain_queue(res.dlq_url, 0, timeout=1.5) == []


PROBE = textwrap.dedent('''
    import os

    from handler_lib import defer


    @defer.task
    def record(*args, **kwargs):
        with open(os.environ["R3_PROBE_OUT"], "w") as out:
            out.write(repr((args, kwargs)))
''')


def test_redrive_runs_a_task_with_its_arguments_exactly(env, tmp_path):
    res, proxy = env
    code = tmp_path / "code"
    code.mkdir()
    module = f"r3_probe_{os.getpid()}"
    (code / f"{module}.py").write_text(PROBE)
    args = [b"\x00raw", {1: "int key", 2.5: "float key", b"k": b"v", "base64": "not bytes"},
            msgpack.Timestamp(1_700_000_000, 5), msgpack.ExtType(7, b"\x01")]
    kwargs = {"nested": {"3": "a str key", 3: "an int key"}}
    item = wire.TaskItem(f"task-{time.monotonic_ns()}", "req", time.time_ns() // 1000, f"{module}:record",
                         args, kwargs, max_attempts=1)
    item = wire.decode(wire.pack_map(item.to_map()))  # as the runner has it
    dead_letter([item])  # the task is not found here: DEFER_TASK_ROOT is set for the redrive only
    probe = tmp_path / "probe.txt"
    out = redrive_cli("--dlq", res.dlq_url, DEFER_TASK_ROOT=str(code), R3_PROBE_OUT=str(probe))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"redriven {item.id}" in out.stdout
    assert probe.read_text() == repr((tuple(item.args), item.kwargs))


def test_a_letter_whose_delete_fails_is_not_reported_as_redriven(env):
    res, proxy = env
    url = late_queue(res, "late-delete")
    item = wire.SqsItem(f"del-{time.monotonic_ns()}", "req", time.time_ns() // 1000, url, "body")
    dead_letter([item])
    client("sqs", res.endpoint_url).create_queue(QueueName=url.rsplit("/", 1)[1])
    proxy.fail_entries("DeleteMessageBatch", code="ReceiptHandleIsInvalid", sender_fault=True,
                       message="injected delete failure")
    out = redrive_cli("--dlq", res.dlq_url)
    proxy.clear()
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"redriven {item.id}" not in out.stdout
    assert f"delivered {item.id}" in out.stdout and "ReceiptHandleIsInvalid" in out.stdout
    assert len(drain_messages(url, 1, timeout=5)) == 1  # the item itself was delivered ...
    (letter,) = drain_queue(res.dlq_url, 1, timeout=5)  # ... and its letter is still in the DLQ
    assert letter["id"] == item.id


def test_a_letter_that_does_not_hold_the_item_exactly_is_refused(env):
    # A letter of an older version: the readable JSON only, with a Binary attribute in it
    res, proxy = env
    url = late_queue(res, "late-old")
    item = wire.SqsItem(f"old-{time.monotonic_ns()}", "req", time.time_ns() // 1000, url, "body", None,
                        None, None, {"blob": b"\x00\xff"})
    body = {"defer_dead_letter": 1, "id": item.id, "kind": "sqs", "target": url, "request_id": "req",
            "attempts": 1, "error": {"code": "AWS.SimpleQueueService.NonExistentQueue", "message": "gone"},
            "enqueued_at_us": item.enqueued_us, "dead_lettered_at_us": item.enqueued_us,
            "item": {**item.to_map(), "attrs": {"blob": {"base64": "AP8="}}}}
    client("sqs", res.endpoint_url).send_message(QueueUrl=res.dlq_url, MessageBody=json.dumps(body))
    client("sqs", res.endpoint_url).create_queue(QueueName=url.rsplit("/", 1)[1])
    out = redrive_cli("--dlq", res.dlq_url)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"refused {item.id}:" in out.stdout and "exactly" in out.stdout, out.stdout
    assert drain_queue(url, 0, timeout=1) == []  # nothing sent
    assert len(drain_queue(res.dlq_url, 1, timeout=5)) == 1  # and the letter stays
