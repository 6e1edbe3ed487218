"""An orders API in FastAPI, served on Lambda by ``defer.asgi``: BackgroundTasks after the response.

``POST /orders`` stores the order and answers 201; its BackgroundTask asks a (slow) shipping
API for a quote and defers a ``ShippingQuoted`` SQS message. Under plain Mangum the caller
would wait for the quote; here the response leaves first and the task runs after it, while
the defer-runner extension keeps the environment thawed, and the message it defers goes with
the same invoke. The route and the task are written as FastAPI's docs write them: the only
Lambda line is the last one.

Environment: ``SHIPPING_API_URL`` (the quote service), ``SHIPPING_QUEUE_URL``,
``ORDERS_DB`` (default /tmp/fastapi-orders.db).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.request
import uuid
from contextlib import asynccontextmanager, contextmanager
from typing import Iterator

from fastapi import BackgroundTasks, FastAPI, HTTPException
from handler_lib import defer
from pydantic import BaseModel, Field


class Item(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=1000)
    unit_price_cents: int = Field(ge=0)


class NewOrder(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)
    items: list[Item] = Field(min_length=1)


class Order(NewOrder):
    id: str
    total_cents: int


@contextmanager
def database() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(os.environ.get("ORDERS_DB", "/tmp/fastapi-orders.db"))
    try:
        with db:  # one transaction
            yield db
    finally:
        db.close()


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Once per environment: the table exists before the first request."""
    with database() as db:
        db.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, body TEXT)")
    yield


app = FastAPI(title="orders", lifespan=lifespan)


def request_shipping_quote(order: Order) -> None:
    """The slow part: a call to the shipping API, then a message for the warehouse."""
    started = time.time()
    request = urllib.request.Request(
        os.environ["SHIPPING_API_URL"], method="POST", headers={"content-type": "application/json"},
        data=json.dumps({"order_id": order.id, "items": sum(i.quantity for i in order.items)}).encode())
    with urllib.request.urlopen(request, timeout=5) as reply:
        quote = json.load(reply)
    defer.sqs(os.environ["SHIPPING_QUEUE_URL"], {
        "type": "ShippingQuoted", "order_id": order.id, "quote": quote,
        "quote_ms": round((time.time() - started) * 1000, 1)})


@app.post("/orders", status_code=201)
def create_order(new: NewOrder, background_tasks: BackgroundTasks) -> Order:
    total = sum(i.quantity * i.unit_price_cents for i in new.items)
    order = Order(id=str(uuid.uuid4()), total_cents=total, **new.model_dump())
    with database() as db:
        db.execute("INSERT INTO orders VALUES (?, ?)", (order.id, order.model_dump_json()))
    background_tasks.add_task(request_shipping_quote, order)
    return order


@app.get("/orders/{order_id}")
def read_order(order_id: str) -> Order:
    with database() as db:
        row = db.execute("SELECT body FROM orders WHERE id = ?", (order_id,)).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail=f"order {order_id} not found")
    return Order.model_validate_json(row[0])


handler = defer.asgi(app)
