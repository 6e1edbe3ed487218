"""A function for the task battery: defers tasks by name (real, broken or forged) and SQS items."""

import os
import time

from handler_lib import defer, wire
from handler_lib._dispatch import DISPATCHER

import jobs

QUEUE_URL = os.environ["TEST_QUEUE_URL"]


@defer
def handler(event, context):
    ids = []
    for n, name in enumerate(event.get("raw_tasks", [])):  # names the @defer API would refuse
        item = wire.TaskItem(f"raw-{event['tag']}-{n}", context.aws_request_id, time.time_ns() // 1000, name)
        ids.append(DISPATCHER.submit(item))
    for n in range(event.get("failing", 0)):
        ids.append(jobs.fails.defer(n))
    for n in range(event.get("sqs", 0)):
        ids.append(defer.sqs(QUEUE_URL, {"tag": event["tag"], "n": n}))
    return {"ids": ids}
