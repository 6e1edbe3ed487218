"""The SQS message a ``@defer.task(queue=...)`` call becomes, read back by ``handler_lib.worker``.

A queued task leaves the response window: the producer sends one SQS message per call (after
the response, through the engine like any ``defer.sqs`` item), and another function, fed by
that queue, runs it. The body is JSON that says what it is and carries the task item in its
exact wire form (base64 msgpack), so the worker decodes the very arguments the extension
would have (bytes, int dict keys, tuples as lists), and a message that is not a queued task
is told apart from one that is damaged.

    {"lambda_defer": "task", "defer_id": "...", "task": "module:qualname", "wire": "<base64>"}
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Dict, Optional

from . import wire

MARK = "task"  # the value of "lambda_defer" in a queued task's body
URL_SCHEMES = ("https://", "http://")


class NotAQueuedTask(ValueError):
    """The body is not a queued task's (another producer's message on the same queue)."""


def check_queue_url(queue_url: Any) -> str:
    """A queue URL as ``@defer.task(queue=...)`` takes it; ValueError where it is given."""
    if not isinstance(queue_url, str) or not queue_url.startswith(URL_SCHEMES) \
            or queue_url.count("/") < 4 or any(c.isspace() for c in queue_url):
        raise ValueError(f"queue must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>), "
                         f"not {queue_url!r}")
    return queue_url


def body_of(item: wire.TaskItem) -> str:
    """The message body of one queued call."""
    packed = base64.b64encode(wire.pack_map(item.to_map())).decode("ascii")
    return json.dumps({"lambda_defer": MARK, "defer_id": item.id, "task": item.function, "wire": packed},
                      separators=(",", ":"))


def task_of(body: Any) -> wire.TaskItem:
    """The task item a body carries: NotAQueuedTask if it is not one of ours, ValueError if it
    is ours but damaged (its wire form does not decode, or names another task or id)."""
    envelope = _envelope(body)
    if envelope is None:
        raise NotAQueuedTask("the message is not a lambda-defer queued task (no \"lambda_defer\": \"task\")")
    try:
        raw = base64.b64decode(str(envelope.get("wire", "")), validate=True)
        item = wire.decode(raw)
    except (binascii.Error, ValueError, wire.FrameDecodeError) as exc:
        raise ValueError(f"the queued task's payload does not decode: {exc}") from None
    if not isinstance(item, wire.TaskItem):
        raise ValueError(f"the queued payload is a {item.kind} item, not a task")
    if item.id != envelope.get("defer_id") or item.function != envelope.get("task"):
        raise ValueError("the queued task's payload does not match its envelope (defer_id or task differ)")
    return item


def _envelope(body: Any) -> Optional[Dict[str, Any]]:
    if not isinstance(body, str):
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if isinstance(parsed, dict) and parsed.get("lambda_defer") == MARK:
        return parsed
    return None
