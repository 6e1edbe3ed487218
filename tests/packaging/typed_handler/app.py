"""A user's handler written against lambda-defer's public API; ``mypy --strict`` must pass on it
with handler_lib installed from the wheel (tests/packaging/test_wheel.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Dict, List

from handler_lib import ConfigError, ExtensionUnavailableError, Task, defer
from handler_lib.testing import Captured, capture

QUEUE_URL = os.environ.get("QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/orders")
TOPIC_ARN = os.environ.get("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:orders")


@dataclass
class Order:
    order_id: str
    total: Decimal


@defer.task(max_attempts=3, timeout=10.0)
def send_receipt(order_id: str, email: str) -> None:
    print(f"receipt for {order_id} to {email}")


@defer.task
def audit(order_id: str) -> int:
    return len(order_id)


@defer.task(max_attempts=3, pass_item_id=True)
def charge(order_id: str, *, defer_id: str) -> str:
    return f"{order_id}:{defer_id}"  # defer_id: the idempotency key, passed by the runner


@defer.task(queue=QUEUE_URL)
def rebuild_report(day: str) -> None:
    print(f"report for {day}")


def encode_set(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


defer.json_default = encode_set


@defer
def handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    order = Order(str(event["order_id"]), Decimal(str(event["total"])))
    ids: List[str] = [
        defer.sqs(QUEUE_URL, order, attributes={"kind": "order"}),
        defer.sns(TOPIC_ARN, {"order_id": order.order_id, "tags": {"new"}}, subject="Order"),
        defer.event("OrderCreated", {"order_id": order.order_id}, source="shop.orders"),
        send_receipt.defer(order.order_id, "buyer@example.com"),
        defer.call(audit, order.order_id),
        charge.defer(order.order_id),
        rebuild_report.defer("2026-12-04"),
    ]
    task: Task[[str], int] = audit
    return {"statusCode": 201, "body": ",".join(ids), "audited": task(order.order_id),
            "charged": charge(order.order_id, defer_id="manual")}


def test_handler() -> None:
    with capture() as deferred:
        handler({"order_id": "o-1", "total": "9.90"}, None)
    captured: Captured = deferred
    assert [item.kind for item in captured] == ["sqs", "sns", "event", "task", "task", "task", "sqs"]
    assert [task.function for task in captured.queued_tasks] == ["app:rebuild_report"]
    assert isinstance(ConfigError("x"), ValueError)
    assert issubclass(ExtensionUnavailableError, ConnectionError)


# The rest of the public API (defer.asgi aside: its app is typed by the ASGI framework, an
# optional extra the clean venv does not have).
from handler_lib import Defer, TaskOptions  # noqa: E402
from handler_lib.changes import ChangeTarget, defer_change  # noqa: E402
from handler_lib.testing import (  # noqa: E402
    alb_event, api_gateway_rest_event, function_url_event, http_api_event, periodic_hooks, run_hooks, sqs_event)
from handler_lib.worker import handler as worker_handler  # noqa: E402

REFRESHED: List[int] = []


@defer.every(300, jitter=30.0, run_first=True)
def refresh() -> None:
    REFRESHED.append(1)


@defer
def workflow_handler(event: Dict[str, Any], context: Any) -> Dict[str, str]:
    closed: List[str] = []
    defer.after(closed.append, "session")
    started = defer.invoke("billing", {"order_id": "o-1"}, qualifier="live", durable_name=None)
    flow = defer.sfn("arn:aws:states:us-east-1:123456789012:stateMachine:orders", {"order_id": "o-1"})
    answered = defer.callback(str(event["callback_id"]), result={"ok": True})
    changed = defer.change("orders", "INSERT", {"id": "o-1"}, {"id": "o-1", "total": 1},
                           target=ChangeTarget.sqs(QUEUE_URL))
    reported = defer_change("orders", "REMOVE", {"id": "o-0"}, target=ChangeTarget.sqs(QUEUE_URL))
    return {"invoke": started, "sfn": flow, "callback": answered, "change": changed, "reported": reported}


def test_workflow_handler() -> None:
    events: List[Dict[str, Any]] = [api_gateway_rest_event("POST", "/orders", body={"a": 1}),
                                    http_api_event(), function_url_event(), alb_event(), sqs_event({"a": 1})]
    assert all(isinstance(e, dict) for e in events)
    with capture() as deferred:
        out = workflow_handler({"callback_id": "Y2FsbGJhY2stMQ=="}, None)
        assert deferred.run_after() == [None]
    assert sorted(out) == ["callback", "change", "invoke", "reported", "sfn"]
    assert "app:refresh" in periodic_hooks() and run_hooks() == [None] and REFRESHED
    assert callable(worker_handler) and Defer is type(defer) and TaskOptions is not None
