"""The orders API driven with real API Gateway HTTP API v2 events, deferred items captured."""

from __future__ import annotations

import io
import json
from types import ModuleType
from typing import Any

import pytest

from handler_lib import wire
from handler_lib.testing import capture

from .conftest import TARGETS, LambdaContext, http_events

get_order, post_order, sample_order = http_events.get_order, http_events.post_order, http_events.sample_order


def _call(app: ModuleType, event: dict[str, Any]) -> tuple[int, Any]:
    response = app.handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_post_defers_the_five_side_effects_and_answers_201(example_app):
    # GIVEN a valid order
    # WHEN it is posted
    with capture() as deferred:
        status, body = _call(example_app, post_order(sample_order(1)))
    # THEN the order is created and returned
    assert status == 201, body
    oid = body["id"]
    assert body["email"] == "customer1@example.com" and body["total_cents"] == 2 * 1250 + 2 * 499
    # AND exactly five side effects were deferred, one of each kind, in this order: the last
    # a task on the invoices queue (an SQS message the invoices function runs)
    assert [type(i) for i in deferred] == [wire.SnsItem, wire.SqsItem, wire.EventItem, wire.TaskItem, wire.SqsItem]
    (sns,), (event,), (task,) = deferred.sns, deferred.events, deferred.tasks
    sqs = deferred.sqs[0]
    (invoice,) = deferred.queued_tasks
    assert invoice.function == "tasks:archive_invoice" and invoice.args[:3] == [body["id"], "customer1@example.com", 3498]
    assert deferred.sqs[1].queue_url == TARGETS["INVOICES_QUEUE_URL"]
    assert sns.topic_arn == TARGETS["ORDERS_TOPIC_ARN"] and sns.subject == "Order confirmed"
    assert json.loads(sns.message) == {"order_id": oid, "email": "customer1@example.com",
                                       "total_cents": 3498}
    assert sqs.queue_url == TARGETS["FULFILMENT_QUEUE_URL"] and sqs.group_id == oid
    assert [i["sku"] for i in json.loads(sqs.body)["items"]] == ["MUG-01", "TEA-07"]
    assert event.detail_type == "OrderCreated" and event.source == "shop.orders"
    assert event.bus == TARGETS["EVENT_BUS_NAME"]
    assert json.loads(event.detail)["order_id"] == oid and json.loads(event.detail)["defer_id"] == event.id
    assert task.function == "tasks:send_receipt" and task.args == [oid] and task.max_attempts == 3


def test_the_captured_receipt_task_writes_the_receipt(example_app):
    with capture() as deferred:
        _, body = _call(example_app, post_order(sample_order(2)))
    import orders

    assert orders.get_receipt(body["id"]) is None  # deferred: not written during the request
    deferred.run_tasks()
    receipt = orders.get_receipt(body["id"])
    assert receipt is not None and "Total: 47.48" in receipt.text
    deferred.run_tasks()  # a retried run is harmless
    assert orders.get_receipt(body["id"]).written_at_us == receipt.written_at_us


def test_the_captured_invoice_task_writes_the_invoice_to_s3(example_app):
    """What the invoices function does with the queued call, here, from the captured item."""
    import os

    import boto3

    with capture() as deferred:
        _, body = _call(example_app, post_order(sample_order(2)))
    s3 = boto3.client("s3")
    key = f"invoices/{body['id']}.txt"
    assert s3.list_objects_v2(Bucket=os.environ["INVOICES_BUCKET"]).get("KeyCount") == 0  # not in the request
    deferred.run_tasks()
    text = s3.get_object(Bucket=os.environ["INVOICES_BUCKET"], Key=key)["Body"].read().decode()
    assert text.splitlines()[:2] == [f"Invoice for order {body['id']}", "Bill to: customer2@example.com"]
    assert text.endswith("Total: 47.48")


def test_orders_changes_go_to_the_changes_queue_after_commit(example_app, monkeypatch):
    changes_queue = "https://sqs.us-east-1.amazonaws.com/123456789012/order-changes"
    monkeypatch.setenv("ORDER_CHANGES_QUEUE_URL", changes_queue)
    with capture() as deferred:
        _, body = _call(example_app, post_order(sample_order(1)))
        deferred.run_tasks()  # the receipt task marks the order: an update of the orders table

    def records(items):
        return [json.loads(i.body)["Records"][0] for i in items if i.queue_url == changes_queue]

    insert, modify = records(deferred.sqs)  # receipts are not captured: only the orders table
    assert (insert["eventName"], insert["dynamodb"]["Keys"]) == ("INSERT", {"id": {"S": body["id"]}})
    assert insert["dynamodb"]["NewImage"]["email"] == {"S": "customer1@example.com"}
    assert insert["eventSourceARN"].endswith("table/orders")
    assert modify["eventName"] == "MODIFY"
    assert modify["dynamodb"]["OldImage"]["status"] == {"S": "created"}
    assert modify["dynamodb"]["NewImage"]["status"] == {"S": "receipt_sent"}


def test_get_reads_the_order_back(example_app):
    with capture():
        _, created = _call(example_app, post_order(sample_order(3), base64_body=True))
    with capture() as deferred:
        status, body = _call(example_app, get_order(created["id"]))
    assert status == 200 and body == created
    assert list(deferred) == []


def test_get_of_an_unknown_order_is_404(example_app):
    with capture() as deferred:
        status, body = _call(example_app, get_order("no-such-order"))
    assert status == 404 and "no-such-order" in body["message"]
    assert list(deferred) == []


@pytest.mark.parametrize("payload, expected", [
    (None, ["body is empty"]),
    ("{not json", ["body is not valid JSON"]),
    ([1, 2], ["body must be a JSON object, not list"]),
    ({"items": [{"sku": "A", "quantity": 1, "unit_price_cents": 1}]}, ["email must be"]),
    ({"email": "a@b.co", "items": []}, ["items must be a non-empty list"]),
    ({"email": "a@b.co", "items": [{"sku": "", "quantity": 0, "unit_price_cents": -1}]},
     ["items[0].sku", "items[0].quantity", "items[0].unit_price_cents"]),
    ({"email": "a@b.co", "items": [{"sku": "A", "quantity": True, "unit_price_cents": 1.5}]},
     ["items[0].quantity", "items[0].unit_price_cents"]),
    ({"email": "a@b.co", "items": ["A"]}, ["items[0] must be an object"]),
    ({"email": "a@b.co", "items": [{"sku": "A", "quantity": 1, "unit_price_cents": 1}], "coupon": "X"},
     ["unknown field(s): coupon"]),
])
def test_an_invalid_body_is_a_400_that_says_what_is_wrong_and_defers_nothing(example_app, payload, expected):
    with capture() as deferred:
        status, body = _call(example_app, post_order(payload))
    assert status == 400 and body["message"] == "invalid order"
    assert len(body["errors"]) == len(expected)
    for error, start in zip(body["errors"], expected):
        assert error.startswith(start), body["errors"]
    assert list(deferred) == []


def test_defer_is_outermost_and_powertools_decorators_still_run(example_app, capsys):
    # The Logger's handler keeps the stream it was created with: point it at a buffer.
    log_stream = io.StringIO()
    example_app.logger.registered_handler.setStream(log_stream)
    with capture():
        _call(example_app, post_order(sample_order(4)))
    out = log_stream.getvalue() + capsys.readouterr().out
    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    log = next(l for l in lines if l.get("message") == "order created")
    assert log["function_request_id"] == "req-0001" and log["correlation_id"]  # inject_lambda_context
    emf = next(l for l in lines if "_aws" in l)  # log_metrics flushed an EMF blob
    assert emf["OrderCreated"] == [1.0] or emf["OrderCreated"] == 1.0
    assert example_app.handler.__wrapped__ is not None  # functools.wraps chain kept
