"""A change record that cannot be sent fails its transaction: capture_changes checks each
record at the flush that makes it, so the COMMIT never happens without its records.

On a real database: SQLite always, PostgreSQL when its server is installed (the fixtures of
tests/changes). Deferred items are captured (handler_lib.testing.capture).
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Iterator

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from handler_lib.changes import ChangeTarget, capture_changes
from handler_lib.testing import capture
from tests.changes.conftest import postgres_url  # noqa: F401 - the fixture, used by engine_url
from tests.changes.models import Base, Order

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/changes"
TOPIC = "arn:aws:sns:us-east-1:123456789012:changes"


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'changes.db'}" if request.param == "sqlite" else request.getfixturevalue(
        "postgres_url")
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    try:
        yield sessionmaker(engine)
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()


def order(oid: str, note: str | None = None) -> Order:
    return Order(id=oid, status="new", quantity=1, price=Decimal("1.00"), paid=False, note=note,
                 created_at=datetime(2024, 5, 1))


def stored(sessions, oid: str):
    with sessions() as session:
        return session.scalar(select(Order.note).where(Order.id == oid))


@pytest.mark.parametrize("target,size", [(ChangeTarget.sqs(QUEUE), 1_100_000), (ChangeTarget.sns(TOPIC), 300_000)])
def test_an_insert_whose_record_is_too_large_fails_the_transaction(sessions, caplog, target, size):
    capture_changes(sessions, target)
    with capture() as deferred, caplog.at_level(logging.ERROR, logger="handler_lib"):
        with pytest.raises(ValueError, match=r"INSERT record of orders#id=big .*rolled back"):
            with sessions.begin() as session:
                session.add(order("fine"))
                session.add(order("big", "x" * size))
    assert deferred == []  # nothing sent, not even the change that fitted ...
    assert stored(sessions, "big") is None and stored(sessions, "fine") is None  # ... none committed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_update_that_makes_its_record_too_large_fails_at_its_flush_and_the_session_goes_on(sessions):
    capture_changes(sessions, ChangeTarget.sqs(QUEUE))
    with capture() as deferred:
        with sessions.begin() as session:
            session.add(order("o-1", "small"))
        deferred.clear()
        with sessions() as session:
            row = session.get(Order, "o-1")
            row.note = "y" * 1_100_000
            with pytest.raises(ValueError, match="MODIFY record of orders#id=o-1"):
                session.flush()
            session.rollback()
            session.get(Order, "o-1").note = "fits"
            session.commit()
    assert stored(sessions, "o-1") == "fits"
    assert len(deferred.sqs) == 1 and '"fits"' in deferred.sqs[0].body  # only the change committed
