"""A handler whose thread keeps deferring while the periodic hook runs after the response."""

import os
import threading
import time

from handler_lib import defer

QUEUE = os.environ["TEST_QUEUE_URL"]


@defer.every(3600, run_first=True)
def refresh() -> None:
    for n in range(10):
        defer.sqs(QUEUE, {"from": "hook", "n": n})
        time.sleep(0.03)


def _keep_deferring(tag: int) -> None:
    for n in range(10):
        defer.sqs(QUEUE, {"from": "thread", "tag": tag, "n": n})
        time.sleep(0.03)


@defer
def handler(event, context):
    thread = threading.Thread(target=_keep_deferring, args=(event["tag"],))
    thread.start()
    defer.sqs(QUEUE, {"from": "handler", "tag": event["tag"]})
    if event.get("join"):
        thread.join()
    return {"ok": True}
