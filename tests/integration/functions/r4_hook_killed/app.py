"""A periodic hook that defers a message, then works a while: the extension is killed meanwhile."""

import os
import sys
import time
import uuid

from handler_lib import defer

ENVIRONMENT = uuid.uuid4().hex  # tells the two environments' hook items apart


@defer.every(3600, run_first=True)
def refresh() -> None:
    defer.sqs(os.environ["TEST_QUEUE_URL"], {"from": "hook", "env": ENVIRONMENT})
    sys.stdout.write("hook deferred\n")
    sys.stdout.flush()
    time.sleep(1.0)
    defer.sqs(os.environ["TEST_QUEUE_URL"], {"from": "hook-late"})


@defer
def handler(event, context):
    defer.sqs(os.environ["TEST_QUEUE_URL"], {"from": "handler", "n": event["n"]})
    return {"ok": True}
