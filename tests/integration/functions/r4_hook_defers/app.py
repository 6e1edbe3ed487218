"""A periodic hook that defers: a message, and a defer.after callable of its own."""

import os
import sys

from handler_lib import defer


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@defer.every(3600, run_first=True)
def refresh() -> None:
    defer.sqs(os.environ["TEST_QUEUE_URL"], {"from": "hook", "pid": os.getpid()})
    defer.after(_say, f"after-of-hook {os.getpid()}")


@defer
def handler(event, context):
    return {"pid": os.getpid()}
