"""The same Powertools function publishing the same 5 items inline with boto3, as users write it:
clients made at init, one call per item (2 SQS, 2 SNS, 1 EventBridge). The baseline of
``cold_response_ratio_to_inline`` and of the warm billed ratio in the cold-start bench."""

import json
import os

import boto3
from aws_lambda_powertools import Logger

logger = Logger(service="bench-cold", level="WARNING")
QUEUE_URL = os.environ.get("BENCH_QUEUE_URL", "")
TOPIC_ARN = os.environ.get("BENCH_TOPIC_ARN", "")
BUS = os.environ.get("BENCH_BUS", "default")
sqs = boto3.client("sqs")
sns = boto3.client("sns")
events = boto3.client("events")


@logger.inject_lambda_context
def handler(event, context):
    order = json.dumps({"order_id": str(event.get("i", 0)), "note": "x" * 200})
    sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=order)
    sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=order)
    sns.publish(TopicArn=TOPIC_ARN, Message=order)
    sns.publish(TopicArn=TOPIC_ARN, Message=order)
    events.put_events(Entries=[{"Source": "bench.orders", "DetailType": "OrderCreated", "Detail": order,
                                "EventBusName": BUS}])
    return {"statusCode": 200, "body": "{}"}
