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


TICKS = []


def _tick(seconds: float) -> None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        TICKS.append(time.monotonic())
        time.sleep(0.01)


@defer
def after_handler(event, context):
    """Post-response work in this process: a closure that sleeps, then defers a message."""
    if event.get("ticks"):
        return {"ticks": len(TICKS)}
    tag = event["tag"]
    started = time.time()

    def slow_side_effect() -> None:  # a closure: nothing a task in another process could be
        _tick(event.get("seconds", 1.0))
        defer.sqs(os.environ["TEST_QUEUE_URL"], {"tag": tag, "after_s": round(time.time() - started, 3)})

    def broken() -> None:
        raise ValueError(f"post-response work failed on purpose ({tag})")

    if event.get("fail"):
        defer.after(broken)
    defer.after(slow_side_effect)
    return {"ok": True, "pid": os.getpid()}
