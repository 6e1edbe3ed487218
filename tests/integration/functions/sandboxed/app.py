"""Functions for the production-timing tests in the local sandbox."""

import os
import time

from handler_lib import defer


@defer.task
def slow_receipt(tag: str) -> None:
    time.sleep(1.0)
    with open(os.environ["TASK_LOG"], "a") as fh:
        fh.write(f"{tag}\n")


@defer
def handler(event, context):
    slow_receipt.defer(event["tag"])
    return {"ok": True}


def unwrapped(event, context):
    """No @defer: the extension must learn from Telemetry runtimeDone that this is done."""
    time.sleep(0.3)  # a drain that started at INVOKE would be over before the item exists
    defer.sqs(os.environ["TEST_QUEUE_URL"], {"tag": event["tag"]})
    return {"ok": True}
