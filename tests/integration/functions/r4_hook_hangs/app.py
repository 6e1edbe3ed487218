"""A periodic hook that outlives its invoke's deadline, then defers a message."""

import os
import time

from handler_lib import defer


@defer.every(3600, run_first=True)
def refresh() -> None:
    time.sleep(float(os.environ.get("HOOK_SLEEP_S", "3")))
    defer.sqs(os.environ["TEST_QUEUE_URL"], {"from": "hook"})


@defer
def handler(event, context):
    defer.sqs(os.environ["TEST_QUEUE_URL"], {"from": "handler", "n": event["n"]})
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
