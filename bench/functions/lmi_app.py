"""The Managed Instances bench's function: each invoke defers a few messages stamped with
the time of the defer call (the bench reads delivery lag from SQS's SentTimestamp)."""

import os
import time

from handler_lib import defer


@defer
def handler(event, context):
    for i in range(event.get("items", 3)):
        defer.sqs(os.environ["BENCH_QUEUE_URL"], {"t": time.time(), "i": i})
    return {"ok": True}
