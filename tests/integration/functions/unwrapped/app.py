"""A handler that defers without @defer: no end-of-invoke marker is ever sent."""

import os

from handler_lib import defer


def handler(event, context):
    defer.sqs(os.environ["TEST_QUEUE_URL"], {"tag": event["tag"]})
    return {"ok": True}
