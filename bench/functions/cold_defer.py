"""The same Powertools function with lambda-defer: it defers 5 items (2 SQS, 2 SNS, 1 EventBridge)."""

import os

from aws_lambda_powertools import Logger
from handler_lib import defer

logger = Logger(service="bench-cold", level="WARNING")
QUEUE_URL = os.environ.get("BENCH_QUEUE_URL", "")
TOPIC_ARN = os.environ.get("BENCH_TOPIC_ARN", "")
BUS = os.environ.get("BENCH_BUS", "default")


@defer
@logger.inject_lambda_context
def handler(event, context):
    order = {"order_id": str(event.get("i", 0)), "note": "x" * 200}
    defer.sqs(QUEUE_URL, order)
    defer.sqs(QUEUE_URL, order)
    defer.sns(TOPIC_ARN, order)
    defer.sns(TOPIC_ARN, order)
    defer.event("OrderCreated", order, source="bench.orders", bus=BUS)
    return {"statusCode": 200, "body": "{}"}
