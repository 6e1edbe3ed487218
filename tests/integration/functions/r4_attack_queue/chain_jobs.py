"""A queued task that defers more work itself, run by handler_lib.worker."""

import os

from handler_lib import defer

QUEUE = os.environ["TASK_QUEUE_URL"]
OUT = os.environ["OUT_QUEUE_URL"]


@defer.task(queue=QUEUE)
def notify(n: int) -> None:
    defer.sqs(OUT, {"notified": n})
    print(f"notify {n} deferred its message", flush=True)
