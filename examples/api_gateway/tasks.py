"""Deferred tasks of the orders API; the defer-runner extension imports them as ``tasks:<name>``."""

from __future__ import annotations

import os
import time
from typing import Any

from handler_lib import defer

import orders


@defer.task(max_attempts=3, timeout=5.0)
def send_receipt(order_id: str) -> None:
    """Render the receipt and store it; idempotent, so a retried run writes it once."""
    order = orders.get_order(order_id)
    if order is None:
        raise LookupError(f"order {order_id} not found")  # retried, then dead-lettered
    if orders.get_receipt(order_id) is not None:
        return
    lines = [f"Receipt for order {order.id}", f"To: {order.email}"]
    lines += [f"  {i['quantity']} x {i['sku']} @ {i['unit_price_cents'] / 100:.2f}"
              for i in order.items()]
    lines.append(f"Total: {order.total_cents / 100:.2f}")
    with orders.sessions().begin() as session:
        session.add(orders.Receipt(order_id=order_id, text="\n".join(lines),
                                   written_at_us=time.time_ns() // 1000, writer_pid=os.getpid()))
        session.get(orders.Order, order_id).status = "receipt_sent"


_s3: Any = None


# Another function runs it (serverless.yml's ``invoices``: handler_lib.worker.handler, fed by
# this queue), so a slow renderer never holds the API's environment after a response.
@defer.task(queue=os.environ["INVOICES_QUEUE_URL"], max_attempts=3)
def archive_invoice(order_id: str, email: str, total_cents: int, items: list[dict[str, Any]]) -> None:
    """Write the invoice to S3 under invoices/<order_id>.txt; a redelivered call writes it again,
    the same text under the same key."""
    global _s3
    if _s3 is None:
        import boto3

        _s3 = boto3.client("s3")
    lines = [f"Invoice for order {order_id}", f"Bill to: {email}"]
    lines += [f"  {i['quantity']} x {i['sku']} @ {i['unit_price_cents'] / 100:.2f}" for i in items]
    lines.append(f"Total: {total_cents / 100:.2f}")
    _s3.put_object(Bucket=os.environ["INVOICES_BUCKET"], Key=f"invoices/{order_id}.txt",
                   Body="\n".join(lines).encode(), ContentType="text/plain")
