"""A function for the fault battery: defers numbered items, and misbehaves on request."""

import os
import socket
import time

from handler_lib import defer, wire
from handler_lib._dispatch import DISPATCHER

QUEUE_URL = os.environ["TEST_QUEUE_URL"]
TOPIC_ARN = os.environ["TEST_TOPIC_ARN"]


@defer.task
def echo(tag, n, payload):
    """Re-sends what it was given, so a test sees the task ran with its argument intact."""
    defer.sqs(QUEUE_URL, {"tag": tag, "n": n, "keys": sorted(map(repr, payload))})


@defer
def handler(event, context):
    ids = []
    if event.get("garbage"):  # a second connection that writes junk, then an oversize length
        for junk in (b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1", b"\xff\xff\xff\xff"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(os.environ["DEFER_SOCKET"])
                s.sendall(junk)
    if event.get("forged_task"):  # a frame naming a function that is not a @defer.task
        item = wire.TaskItem(f"forged-{event['tag']}", context.aws_request_id, time.time_ns() // 1000,
                             "os:system", ["echo should-never-run"])
        ids.append(DISPATCHER.submit(item))
    for n in range(event.get("sqs", 0)):
        ids.append(defer.sqs(QUEUE_URL, {"tag": event["tag"], "n": n}))
    for n in range(event.get("big", 0)):  # 100 KB each: enough to cross a small memory bound
        ids.append(defer.sqs(QUEUE_URL, {"tag": event["tag"], "n": n, "pad": "x" * 100_000}))
    if event.get("int_key_task"):  # a task argument msgpack carries but JSON could not
        ids.append(echo.defer(event["tag"], event.get("sqs", 0), {1: "x", None: b"y"}))
        for n in range(event.get("sqs", 0) + 1, 2 * event.get("sqs", 0) + 1):
            ids.append(defer.sqs(QUEUE_URL, {"tag": event["tag"], "n": n}))
    for n in range(event.get("sns", 0)):
        ids.append(defer.sns(TOPIC_ARN, {"tag": event["tag"], "n": n}))
    if event.get("after"):  # post-response work that defers more
        def later():
            time.sleep(event["after"])
            defer.sqs(QUEUE_URL, {"tag": event["tag"], "n": "after"})
        defer.after(later)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"ids": ids, "pid": os.getpid()}
