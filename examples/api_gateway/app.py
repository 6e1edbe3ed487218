"""An orders HTTP API (API Gateway HTTP API, payload v2) that defers its side effects.

``POST /orders`` validates the body, stores the order (SQLAlchemy) and answers 201 at once;
the confirmation (SNS), the fulfilment message (SQS FIFO, grouped by order), ``OrderCreated``
(EventBridge) and the receipt (a ``@defer.task``) are sent by the defer-runner extension
after the response; the invoice (``archive_invoice``, a task on a queue) goes to
``INVOICES_QUEUE_URL``, where the invoices function (``handler_lib.worker.handler``) runs it.
``DEFER_MODE=inline`` runs the same side effects in this process before the response is
released, which is what the demo compares against.

Environment: ``ORDERS_TOPIC_ARN``, ``FULFILMENT_QUEUE_URL``, ``EVENT_BUS_NAME``,
``ORDERS_EVENT_SOURCE`` (default ``shop.orders``), ``INVOICES_QUEUE_URL`` and ``INVOICES_BUCKET``
(the invoices worker's), ``DATABASE_URL`` (default SQLite in /tmp),
``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from handler_lib import defer

import orders
from tasks import archive_invoice, send_receipt
from validation import InvalidOrder, parse_order

DEFAULT_EVENT_SOURCE = "shop.orders"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "orders"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Shop"))
app = APIGatewayHttpResolver()


@app.post("/orders")
def create_order() -> Response:
    try:
        email, items = parse_order(app.current_event.decoded_body)
    except InvalidOrder as exc:
        metrics.add_metric(name="OrderRejected", unit=MetricUnit.Count, value=1)
        return _json(400, {"message": "invalid order", "errors": exc.errors})
    order = orders.create_order(email, items)
    _defer_side_effects(order)
    metrics.add_metric(name="OrderCreated", unit=MetricUnit.Count, value=1)
    logger.info("order created", order_id=order.id, total_cents=order.total_cents)
    return _json(201, order.to_dict(), headers={"Location": f"/orders/{order.id}"})


@app.get("/orders/<order_id>")
def read_order(order_id: str) -> Response:
    order = orders.get_order(order_id)
    metrics.add_metric(name="OrderRead" if order else "OrderNotFound", unit=MetricUnit.Count, value=1)
    if order is None:
        return _json(404, {"message": f"order {order_id} not found"})
    return _json(200, order.to_dict())


def _defer_side_effects(order: orders.Order) -> None:
    """Hand the side effects to the extension: microseconds here, delivered after the response."""
    summary = {"order_id": order.id, "email": order.email, "total_cents": order.total_cents}
    defer.sns(os.environ["ORDERS_TOPIC_ARN"], summary, subject="Order confirmed")
    defer.sqs(os.environ["FULFILMENT_QUEUE_URL"], {**summary, "items": order.items()},
              group_id=order.id)
    defer.event("OrderCreated", summary, source=os.environ.get("ORDERS_EVENT_SOURCE", DEFAULT_EVENT_SOURCE),
                bus=os.environ.get("EVENT_BUS_NAME") or None)
    send_receipt.defer(order.id)
    archive_invoice.defer(order.id, order.email, order.total_cents, order.items())


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body,
                    headers=headers)


# @defer outermost: its end-of-invoke marker goes out after the metrics are flushed.
@defer
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
