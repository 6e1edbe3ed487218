"""capture_changes on a real database: SQLite always, PostgreSQL when its server is installed.

Deferred items are captured (handler_lib.testing.capture), so each test sees exactly what
would be handed to the extension, and when: only after the outermost COMMIT.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterator

import pytest
from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session, sessionmaker

from handler_lib.changes import ChangeTarget, capture_changes
from handler_lib.testing import Captured, capture

from .models import Base, Counter, Order, Stock, audit_log

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/changes"
FIFO_QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/changes.fifo"
CREATED = datetime(2024, 5, 1, 12, 30, 0)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'changes.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def sessions(engine_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(engine_url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    try:
        yield sessionmaker(engine)
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()


@pytest.fixture
def captured(sessions) -> Iterator[Captured]:
    with capture() as deferred:
        yield deferred


def _order(oid: str = "o-1", **kw: Any) -> Order:
    values = dict(id=oid, status="new", quantity=2, price=Decimal("12.50"), paid=False, note=None,
                  created_at=CREATED)
    values.update(kw)
    return Order(**values)


def records(deferred: Captured) -> list[dict[str, Any]]:
    """The stream records in the captured SQS messages, in the order they were deferred."""
    out = []
    for item in deferred.sqs:
        (record,) = json.loads(item.body)["Records"]
        out.append(record)
    return out


def summary(deferred: Captured) -> list[tuple[str, str]]:
    return [(r["eventName"], "/".join(v.get("S") or v.get("N") for v in r["dynamodb"]["Keys"].values()))
            for r in records(deferred)]


# -- what a record looks like ----------------------------------------------------------
def test_an_insert_is_sent_after_commit_as_a_dynamodb_stream_record(sessions, captured):
    capture_changes(sessions, ChangeTarget.sqs(QUEUE))
    with sessions() as session:
        session.add(_order())
        session.flush()
        # THEN nothing is deferred before the COMMIT
        assert list(captured) == []
        session.commit()
    (record,) = records(captured)
    assert record["eventName"] == "INSERT" and record["eventSource"] == "lambda-defer:db"
    assert record["eventSourceARN"].endswith("table/orders") and record["eventID"]
    stream = record["dynamodb"]
    assert stream["Keys"] == {"id": {"S": "o-1"}}
    assert stream["NewImage"] == {"id": {"S": "o-1"}, "status": {"S": "new"}, "quantity": {"N": "2"},
                                  "price": {"N": "12.50"}, "paid": {"BOOL": False}, "note": {"NULL": True},
                                  "created_at": {"S": "2024-05-01T12:30:00"}}
    assert "OldImage" not in stream and stream["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert stream["SequenceNumber"].isdigit() and isinstance(stream["ApproximateCreationDateTime"], int)
    assert captured.sqs[0].attributes == {"table": "orders", "eventName": "INSERT"}


def test_an_autoincrement_key_is_known_in_the_record(sessions, captured):
    capture_changes(sessions, ChangeTarget.sqs(QUEUE))
    with sessions.begin() as session:
        session.add(Counter(name="a"))
    (record,) = records(captured)
    assert record["dynamodb"]["Keys"] == {"id": {"N": "1"}}


def test_an_update_carries_only_the_changed_columns_in_new_and_old_images(sessions, captured):
    capture_changes(sessions, ChangeTarget.sqs(QUEUE))
    with sessions.begin() as session:
        session.add(_order())
    with sessions.begin() as session:
        order = session.get(Order, "o-1")
        order.status, order.paid, order.note = "paid", True, "gift"
        order.quantity = 2  # assigned, but the same value: not a change
    with sessions.begin() as session:
        session.get(Order, "o-1").quantity = 2  # nothing changed at all: no record
    insert_record, update_record = records(captured)
    stream = update_record["dynamodb"]
    assert update_record["eventName"] == "MODIFY"
    assert stream["NewImage"] == {"id": {"S": "o-1"}, "status": {"S": "paid"}, "paid": {"BOOL": True},
                                  "note": {"S": "gift"}}
    assert stream["OldImage"] == {"id": {"S": "o-1"}, "status": {"S": "new"}, "paid": {"BOOL": False},
                                  "note": {"NULL": True}}


def test_a_delete_has_the_whole_old_image_even_when_the_row_was_expired(sessions, captured):
    capture_changes(sessions, ChangeTarget.sqs(QUEUE))
    with sessions() as session:
        order = _order()
        session.add(order)
        session.commit()  # expire_on_commit: every attribute of `order` is unloaded now
        session.delete(order)
        session.commit()
    _, removed = records(captured)
    assert removed["eventName"] == "REMOVE" and "NewImage" not in removed["dynamodb"]
    assert removed["dynamodb"]["OldImage"]["status"] == {"S": "new"}
    assert removed["dynamodb"]["OldImage"]["price"] == {"N": "12.50"}
    assert set(removed["dynamodb"]["OldImage"]) == {c.name for c in Order.__table__.columns}


# -- transactions ------------------------------------------------------------------------
def test_a_rollback_drops_the_changes(sessions, captured):
    capture_changes(sessions, ChangeTarget.sqs(QUEUE))
    with sessions() as session:
        session.add(_order("gone"))
        session.flush()
        session.rollback()
        session.add(_order("kept"))
        session.commit()
    assert summary(captured) == [("INSERT", "kept")]


def test_an_exception_inside_begin_drops_the_changes(sessions, captured):
    capture_changes(sessions, ChangeTarget.sqs(QUEUE))
    with pytest.raises(RuntimeError):
        with sessions.begin() as session:
            session.add(_order("gone"))
            session.flush()
            raise RuntimeError("handler failed")
    assert list(captured) == []


def test_a_rolled_back_savepoint_drops_only_its_own_changes(sessions, captured):
    capture_changes(sessions, ChangeTarget.sqs(QUEUE))
    with sessions.begin() as session:
        session.add(_order("outer"))
        session.flush()
        with session.begin_nested():  # released: its changes join the outer transaction
            session.add(_order("released"))
        savepoint = session.begin_nested()
        session.add(_order("inner"))
        with session.begin_nested():  # nested in a savepoint that is rolled back below
            session.add(_order("inner-inner"))
        session.flush()
        savepoint.rollback()
        assert list(captured) == []  # a RELEASE is not a COMMIT
        session.add(_order("after"))
    assert summary(captured) == [("INSERT", "outer"), ("INSERT", "released"), ("INSERT", "after")]
    with sessions() as session:  # and the database agrees
        assert sorted(session.scalars(select(Order.id))) == ["after", "outer", "released"]


def test_several_commits_keep_their_order_and_sequence_numbers_increase(sessions, captured):
    capture_changes(sessions, ChangeTarget.sqs(FIFO_QUEUE))
    with sessions() as session:
        session.add(_order("a"))
        session.commit()
        session.get(Order, "a").status = "paid"
        session.add(Stock(warehouse="w1", sku="mug", level=3))
        session.commit()
        session.delete(session.get(Order, "a"))
        session.commit()
    # commits in order; inside one flush: inserts, then updates, then deletes
    assert summary(captured) == [("INSERT", "a"), ("INSERT", "w1/mug"), ("MODIFY", "a"), ("REMOVE", "a")]
    numbers = [r["dynamodb"]["SequenceNumber"] for r in records(captured)]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4
    assert [int(n) for n in numbers] == sorted(int(n) for n in numbers)
    # FIFO: one group per row, so per-key order is kept by SQS
    assert [i.group_id for i in captured.sqs] == ["orders#id=a", "stock#sku=mug,warehouse=w1", "orders#id=a",
                                                  "orders#id=a"]


# -- scope --------------------------------------------------------------------------------
def test_core_statements_and_tables_left_out_are_not_captured(sessions, captured):
    capture_changes(sessions, ChangeTarget.sqs(QUEUE), tables={"orders"})
    with sessions.begin() as session:
        session.execute(insert(audit_log).values(id=1, text="core insert"))  # not through the ORM
        session.add(Stock(warehouse="w1", sku="mug", level=3))  # ORM, but not a chosen table
        session.add(_order())
    assert summary(captured) == [("INSERT", "o-1")]
    with sessions() as session:
        assert session.execute(select(audit_log.c.text)).scalar_one() == "core insert"


def test_a_single_session_can_be_captured_and_detached(sessions, captured):
    session = sessions()
    other = sessions()
    capture = capture_changes(session, ChangeTarget.sqs(QUEUE))
    session.add(_order("mine"))
    session.commit()
    other.add(_order("other"))  # a different session of the same factory: not captured
    other.commit()
    capture.detach()
    session.add(_order("after-detach"))
    session.commit()
    session.close(), other.close()
    assert summary(captured) == [("INSERT", "mine")] and capture.sent == 1


# -- other targets -----------------------------------------------------------------------
def test_sns_and_eventbridge_targets(sessions, captured):
    capture_changes(sessions, ChangeTarget.sns("arn:aws:sns:us-east-1:123456789012:changes"))
    capture_changes(sessions, ChangeTarget.eventbridge("db-bus", source="shop.db"))
    with sessions.begin() as session:
        session.add(_order())
    (sns,), (event,) = captured.sns, captured.events
    assert json.loads(sns.message)["Records"][0]["eventName"] == "INSERT"
    assert sns.attributes == {"table": "orders", "eventName": "INSERT"}
    detail = json.loads(event.detail)
    assert (event.detail_type, event.source, event.bus) == ("DatabaseChange", "shop.db", "db-bus")
    assert detail["eventName"] == "INSERT" and detail["dynamodb"]["Keys"] == {"id": {"S": "o-1"}}
    assert event.resources == [detail["eventSourceARN"]]


def test_bad_arguments_fail_at_the_call(sessions):
    with pytest.raises(TypeError, match="Session or sessionmaker"):
        capture_changes(create_engine("sqlite://"), ChangeTarget.sqs(QUEUE))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ChangeTarget"):
        capture_changes(sessions, QUEUE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="collection of table names"):
        capture_changes(sessions, ChangeTarget.sqs(QUEUE), tables="orders")
    with pytest.raises(TypeError, match="queue_url"):
        ChangeTarget.sqs("")
