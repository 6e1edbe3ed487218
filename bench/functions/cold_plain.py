"""A small Powertools function without lambda-defer: the baseline of the cold-start bench."""

from aws_lambda_powertools import Logger

logger = Logger(service="bench-cold", level="WARNING")


@logger.inject_lambda_context
def handler(event, context):
    return {"statusCode": 200, "body": "{}"}
