"""Handlers the sandbox benchmarks run (LAMBDA_TASK_ROOT = bench/functions).

- ``deferred``  defers 5 items (2 SQS, 2 SNS, 1 EventBridge) and returns.
- ``inline``    publishes the same 5 items with boto3 before returning (clients made at import,
  as a warm function would have them).
- ``effects_and_task``  defers 3 side effects (SQS, SNS, EventBridge) and a task, as the
  example's POST /orders does: what the drain after a warm invoke overlaps.
- ``idle``      a ``@defer`` handler that defers nothing.
- ``plain``     no handler_lib at all (the floor, with a do-nothing extension).
"""

import json
import os

QUEUE_URL = os.environ.get("BENCH_QUEUE_URL", "")
TOPIC_ARN = os.environ.get("BENCH_TOPIC_ARN", "")
BUS = os.environ.get("BENCH_BUS", "default")
NOTE = "x" * 200

if os.environ.get("BENCH_INLINE_CLIENTS"):
    import boto3

    _sqs, _sns, _events = boto3.client("sqs"), boto3.client("sns"), boto3.client("events")


def _order(event, n):
    return {"order_id": f"{event.get('i', 0)}-{n}", "note": NOTE}


try:
    from handler_lib import defer
except ImportError:  # the "plain" floor runs without the layer's python/
    defer = None


if defer is not None:
    @defer
    def deferred(event, context):
        defer.sqs(QUEUE_URL, _order(event, 0))
        defer.sqs(QUEUE_URL, _order(event, 1))
        defer.sns(TOPIC_ARN, _order(event, 2))
        defer.sns(TOPIC_ARN, _order(event, 3))
        defer.event("OrderCreated", _order(event, 4), source="bench.orders", bus=BUS)
        return {"statusCode": 201, "body": "{}"}

    @defer.task
    def note_order(order_id):
        """A small task: what matters is that it runs beside the three calls, not after them."""
        return sum(ord(c) for c in order_id)

    @defer
    def effects_and_task(event, context):
        defer.sqs(QUEUE_URL, _order(event, 0))
        defer.sns(TOPIC_ARN, _order(event, 1))
        defer.event("OrderCreated", _order(event, 2), source="bench.orders", bus=BUS)
        note_order.defer(str(event.get("i", 0)))
        return {"statusCode": 201, "body": "{}"}

    @defer
    def idle(event, context):
        return {"statusCode": 200, "body": "{}"}


def inline(event, context):
    _sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=json.dumps(_order(event, 0)))
    _sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=json.dumps(_order(event, 1)))
    _sns.publish(TopicArn=TOPIC_ARN, Message=json.dumps(_order(event, 2)))
    _sns.publish(TopicArn=TOPIC_ARN, Message=json.dumps(_order(event, 3)))
    _events.put_events(Entries=[{"Source": "bench.orders", "DetailType": "OrderCreated",
                                 "Detail": json.dumps(_order(event, 4)), "EventBusName": BUS}])
    return {"statusCode": 201, "body": "{}"}


def unwrapped_idle(event, context):
    return {"statusCode": 200, "body": "{}"}


def plain(event, context):
    return {"statusCode": 200, "body": "{}"}
