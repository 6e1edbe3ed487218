"""Handlers whose end the extension cannot learn from @defer: an outer decorator that
answers without calling the @defer-wrapped handler (a cache hit), and no @defer at all."""

import functools
import os

from handler_lib import defer

QUEUE_URL = os.environ["TEST_QUEUE_URL"]


def cached(fn):
    @functools.wraps(fn)
    def outer(event, context):
        if event.get("cached"):
            return {"cached": True}  # the @defer handler below never runs: no end marker
        return fn(event, context)
    return outer


@cached
@defer
def handler(event, context):
    defer.sqs(QUEUE_URL, {"tag": event["tag"]})
    return {"ok": True}


def unwrapped(event, context):
    if not event.get("idle"):
        defer.sqs(QUEUE_URL, {"tag": event["tag"]})
    return {"ok": True}
