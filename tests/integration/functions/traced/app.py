"""A handler whose deferred items should carry on the invoke's X-Ray trace."""

import os

from handler_lib import defer


@defer
def handler(event, context):
    defer.sqs(os.environ["TEST_QUEUE_URL"], {"tag": event["tag"]})
    defer.sns(os.environ["TEST_TOPIC_ARN"], {"tag": event["tag"]})
    defer.event("Traced", {"tag": event["tag"]}, source=os.environ["TEST_EVENT_SOURCE"],
                bus=os.environ["TEST_BUS_NAME"])
    return {"trace": os.environ.get("_X_AMZN_TRACE_ID")}
