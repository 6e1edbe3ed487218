"""The orders API under AWS's RIE with the built layer and moto: every side effect lands.

RIE answers an invoke only after the extension called next, so everything deferred by a
request is delivered by the time its response arrives; short bounded receives prove it.
"""

from __future__ import annotations

import json
import sys

import pytest
from sqlalchemy import create_engine, text

from tests.support.moto_server import drain_messages, drain_queue

from .conftest import EXAMPLE_DIR, http_events, order_created_queue


@pytest.fixture
def orders_api(rie_factory, built_layer, aws_resources, tmp_path):
    res = aws_resources()
    invoices = aws_resources()  # its queue stands for the invoices queue (the worker is not run here)
    queue_url = order_created_queue(res)  # the example's OrderCreated events, readable
    db = tmp_path / "orders.db"
    env = {"ORDERS_TOPIC_ARN": res.topic_arn, "FULFILMENT_QUEUE_URL": res.fifo_queue_url,
           "EVENT_BUS_NAME": res.bus_name, "DEFER_DLQ_URL": res.dlq_url, "DATABASE_URL": f"sqlite:///{db}",
           "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal"),
           "DEFER_RUNNER_PYTHON": sys.executable, "POWERTOOLS_METRICS_NAMESPACE": "ShopE2E",
           "ORDER_CHANGES_QUEUE_URL": res.queue_url, "INVOICES_QUEUE_URL": invoices.queue_url,
           "INVOICES_BUCKET": "unused-here"}
    rie = rie_factory(built_layer, EXAMPLE_DIR, "app.handler", env=env, timeout_s=10)
    return rie, res, queue_url, f"sqlite:///{db}", invoices.queue_url


def _receipts(db_url: str) -> dict[str, int]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT order_id, writer_pid FROM receipts")).all())
    finally:
        engine.dispose()


def test_every_side_effect_of_each_order_lands_before_the_invoke_returns(orders_api):
    rie, res, events_queue, db_url, invoices_queue = orders_api
    for n in (1, 2, 3):
        # WHEN an order is posted
        status, reply, _ = rie.invoke_json(http_events.post_order(http_events.sample_order(n)))
        assert status == 200 and reply["statusCode"] == 201, reply
        oid = json.loads(reply["body"])["id"]
        # THEN its four side effects already landed
        (confirmation,) = drain_queue(res.topic_queue_url, 1, timeout=2)
        assert confirmation == {"order_id": oid, "email": f"customer{n}@example.com",
                                "total_cents": confirmation["total_cents"]}
        (fulfilment,) = drain_messages(res.fifo_queue_url, 1, timeout=2)
        assert json.loads(fulfilment["Body"])["order_id"] == oid
        assert fulfilment["Attributes"]["MessageGroupId"] == oid
        (event,) = drain_queue(events_queue, 1, timeout=2)
        assert (event["source"], event["detail-type"], event["detail"]["order_id"]) == ("shop.orders", "OrderCreated", oid)
        assert oid in _receipts(db_url)
        # AND the orders table's change records: the request's INSERT, the receipt task's MODIFY
        changes = [m["Records"][0] for m in drain_queue(res.queue_url, 2, timeout=2)]
        assert sorted((c["eventName"], c["dynamodb"]["Keys"]["id"]["S"]) for c in changes) == [
            ("INSERT", oid), ("MODIFY", oid)]
        assert next(c for c in changes if c["eventName"] == "MODIFY")["dynamodb"]["NewImage"]["status"] == {
            "S": "receipt_sent"}
        # AND the invoice is a task on the invoices queue, for the invoices function
        (invoice,) = drain_queue(invoices_queue, 1, timeout=2)
        assert invoice["lambda_defer"] == "task" and invoice["task"] == "tasks:archive_invoice"
        # AND the order reads back
        status, got, _ = rie.invoke_json(http_events.get_order(oid))
        assert got["statusCode"] == 200 and json.loads(got["body"])["id"] == oid
    # AND nothing was dead-lettered, and no change record came twice
    assert drain_queue(res.queue_url, 0, timeout=0.5) == []
    assert drain_queue(res.dlq_url, 0, timeout=0.5) == []


def test_a_bad_order_is_a_400_and_sends_nothing(orders_api):
    rie, res, events_queue, db_url, invoices_queue = orders_api
    status, reply, _ = rie.invoke_json(http_events.post_order({"email": "nope", "items": []}))
    assert reply["statusCode"] == 400
    assert json.loads(reply["body"])["errors"] == ["email must be an e-mail address like name@example.com",
                                                   "items must be a non-empty list"]
    status, reply, _ = rie.invoke_json(http_events.get_order("missing"))
    assert reply["statusCode"] == 404
    assert drain_queue(res.topic_queue_url, 0, timeout=0.5) == []
