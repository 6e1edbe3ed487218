"""A function for the Managed Instances tests: every invoke defers a few standard items and
an ordered run of FIFO items in a group of its own."""

import os
import time

from handler_lib import defer


@defer
def handler(event, context):
    n = event["n"]
    for i in range(event.get("items", 3)):
        defer.sqs(os.environ["TEST_QUEUE_URL"], {"n": n, "i": i, "pid": os.getpid(), "t": time.time()})
    for seq in range(event.get("fifo", 0)):
        defer.sqs(os.environ["TEST_FIFO_QUEUE_URL"], {"n": n, "seq": seq}, group_id=f"invoke-{n}")
    return {"ok": True, "pid": os.getpid()}


@defer
def after_handler(event, context):
    """Post-response work that defers an item once the caller has the response."""
    started = time.time()

    def later() -> None:
        time.sleep(event.get("seconds", 0.2))
        defer.sqs(os.environ["TEST_QUEUE_URL"], {"n": event["n"], "after_s": round(time.time() - started, 3)})

    defer.after(later)
    return {"ok": True}
