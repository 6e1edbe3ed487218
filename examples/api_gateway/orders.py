"""The orders store: SQLAlchemy models and a tiny repository.

SQLite at /tmp/orders.db by default (the only writable place in Lambda); any SQLAlchemy URL
through ``DATABASE_URL``. The engine is built once per process, on first use, so both the
function and the extension process (which runs the receipt task) open it lazily.

With ``ORDER_CHANGES_QUEUE_URL`` set, every insert and update of the orders table is sent
there as a DynamoDB-Streams-shaped change record, after its transaction commits
(``capture_changes``): the order's INSERT from the request, its MODIFY from the receipt task.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DEFAULT_DATABASE_URL = "sqlite:////tmp/orders.db"

_sessions: Optional[sessionmaker[Session]] = None


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    items_json: Mapped[str] = mapped_column(Text)
    total_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="created")  # "receipt_sent" once the receipt is out
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def items(self) -> list[dict[str, Any]]:
        return list(json.loads(self.items_json))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "items": self.items(),
                "total_cents": self.total_cents, "status": self.status,
                "created_at": _utc(self.created_at).isoformat()}


class Receipt(Base):
    """Written by the deferred receipt task: proof that it ran, and when."""

    __tablename__ = "receipts"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    written_at_us: Mapped[int] = mapped_column(BigInteger)
    writer_pid: Mapped[int] = mapped_column(Integer)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def sessions() -> sessionmaker[Session]:
    """The process's session factory; creates the tables on first use."""
    global _sessions
    if _sessions is None:
        url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        _sessions = sessionmaker(engine, expire_on_commit=False)
        if os.environ.get("ORDER_CHANGES_QUEUE_URL"):
            from handler_lib.changes import ChangeTarget, capture_changes

            capture_changes(_sessions, ChangeTarget.sqs(os.environ["ORDER_CHANGES_QUEUE_URL"]), tables={"orders"})
    return _sessions


def create_order(email: str, items: list[dict[str, Any]]) -> Order:
    total = sum(i["quantity"] * i["unit_price_cents"] for i in items)
    order = Order(id=str(uuid.uuid4()), email=email, items_json=json.dumps(items),
                  total_cents=total, created_at=datetime.now(timezone.utc))
    with sessions().begin() as session:
        session.add(order)
    return order


def get_order(order_id: str) -> Optional[Order]:
    with sessions()() as session:
        return session.get(Order, order_id)


def get_receipt(order_id: str) -> Optional[Receipt]:
    with sessions()() as session:
        return session.scalars(select(Receipt).where(Receipt.order_id == order_id)).first()
