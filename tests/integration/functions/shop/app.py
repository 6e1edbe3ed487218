"""A function written against DESIGN.md's public API, as a user would write it."""

import json
import os

from handler_lib import defer

QUEUE_URL = os.environ["TEST_QUEUE_URL"]
FIFO_QUEUE_URL = os.environ["TEST_FIFO_QUEUE_URL"]
TOPIC_ARN = os.environ["TEST_TOPIC_ARN"]
BUS = os.environ["TEST_BUS_NAME"]
SOURCE = os.environ["TEST_EVENT_SOURCE"]


@defer.task
def record_receipt(order_id: str, email: str) -> None:
    """Appends one line per run, so the test can count runs."""
    with open(os.environ["TASK_LOG"], "a") as fh:
        fh.write(json.dumps({"order_id": order_id, "email": email, "pid": os.getpid()}) + "\n")


@defer.task(max_attempts=2)
def always_fails(order_id: str) -> None:
    raise RuntimeError(f"cannot handle {order_id}")


@defer
def handler(event, context):
    ids = []
    for n in range(event.get("count", 1)):
        oid = f"{event['invoke']}-{n}"
        ids.append(defer.sqs(QUEUE_URL, {"order_id": oid}))
        ids.append(defer.sqs(FIFO_QUEUE_URL, {"order_id": oid}, group_id=oid))
        ids.append(defer.sns(TOPIC_ARN, {"order_id": oid}, subject="order"))
        ids.append(defer.event("OrderCreated", {"order_id": oid}, source=SOURCE, bus=BUS))
        ids.append(record_receipt.defer(oid, f"{oid}@example.com"))
        ids.append(defer.call(record_receipt, oid, "second@example.com"))
    if event.get("fail_task"):
        ids.append(always_fails.defer(event["invoke"]))
    if event.get("raise_after_defer"):
        raise ValueError("handler failed after deferring")
    return {"statusCode": 201, "body": json.dumps({"ids": ids, "request_id": context.aws_request_id,
                                                     "pid": os.getpid()})}
