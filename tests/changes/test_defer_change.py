"""defer_change (no SQLAlchemy), record compatibility with stream consumers, and real delivery."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from handler_lib._dispatch import DISPATCHER
from handler_lib.changes import ChangeTarget, attribute_value, defer_change
from handler_lib.testing import capture
from tests.support.moto_server import drain_messages

TARGET = ChangeTarget.sqs("https://sqs.us-east-1.amazonaws.com/123456789012/changes.fifo")


def test_defer_change_sends_one_record_grouped_by_key():
    with capture() as deferred:
        item_id = defer_change("orders", "MODIFY", {"id": 7}, {"status": "paid"}, {"status": "new"}, target=TARGET)
    (item,) = deferred.sqs
    assert item.id == item_id and item.group_id == "orders#id=7"
    (record,) = json.loads(item.body)["Records"]
    assert record["dynamodb"]["Keys"] == {"id": {"N": "7"}}
    assert record["dynamodb"]["NewImage"] == {"status": {"S": "paid"}}
    assert record["dynamodb"]["OldImage"] == {"status": {"S": "new"}}


@pytest.mark.parametrize("args, error", [
    (("orders", "UPSERT", {"id": 1}), "event_name must be one of INSERT, MODIFY, REMOVE"),
    (("", "INSERT", {"id": 1}, {"id": 1}), "table must be a non-empty str"),
    (("orders", "INSERT", {}, {"id": 1}), "keys must be a non-empty dict"),
    (("orders", "INSERT", {"id": 1}), "an INSERT needs new_image"),
    (("orders", "REMOVE", {"id": 1}, {"id": 1}), "a REMOVE has no new_image"),
])
def test_defer_change_rejects_a_bad_change_and_queues_nothing(args, error):
    with capture() as deferred:
        with pytest.raises(ValueError, match=error):
            defer_change(*args, target=TARGET)
    assert list(deferred) == []


def test_a_target_is_required():
    with pytest.raises(TypeError, match="ChangeTarget"):
        defer_change("orders", "INSERT", {"id": 1}, {"id": 1}, target="queue")  # type: ignore[arg-type]


def test_values_get_dynamodb_attribute_value_types():
    assert attribute_value(None) == {"NULL": True}
    assert attribute_value(True) == {"BOOL": True}
    assert attribute_value(3) == {"N": "3"} and attribute_value(Decimal("1.10")) == {"N": "1.10"}
    assert attribute_value(0.5) == {"N": "0.5"} and attribute_value(float("nan")) == {"S": "nan"}
    assert attribute_value(b"\x00\x01") == {"B": "AAE="}
    assert attribute_value({"a": [1, "x"]}) == {"M": {"a": {"L": [{"N": "1"}, {"S": "x"}]}}}


def test_powertools_dynamodb_stream_event_reads_the_records():
    from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

    with capture() as deferred:
        defer_change("orders", "INSERT", {"id": "o-1"}, {"id": "o-1", "qty": 2, "paid": False}, target=TARGET)
        defer_change("orders", "REMOVE", {"id": "o-1"}, old_image={"id": "o-1", "qty": 2}, target=TARGET)
    events = [DynamoDBStreamEvent(json.loads(item.body)) for item in deferred.sqs]
    inserted, removed = (next(iter(e.records)) for e in events)
    assert inserted.event_name.name == "INSERT" and removed.event_name.name == "REMOVE"
    assert inserted.dynamodb.new_image == {"id": "o-1", "qty": Decimal(2), "paid": False}
    assert removed.dynamodb.old_image == {"id": "o-1", "qty": Decimal(2)} and removed.dynamodb.keys == {"id": "o-1"}
    assert int(removed.dynamodb.sequence_number) > int(inserted.dynamodb.sequence_number)


def test_records_are_delivered_to_a_real_fifo_queue_in_order(aws_resources, monkeypatch):
    # GIVEN moto's FIFO queue and inline delivery (no extension in this process)
    res = aws_resources()
    monkeypatch.setenv("DEFER_MODE", "inline")
    DISPATCHER.reset()
    try:
        target = ChangeTarget.sqs(res.fifo_queue_url)
        # WHEN three changes of one row are reported
        defer_change("orders", "INSERT", {"id": "o-9"}, {"id": "o-9", "status": "new"}, target=target)
        defer_change("orders", "MODIFY", {"id": "o-9"}, {"status": "paid"}, {"status": "new"}, target=target)
        defer_change("orders", "REMOVE", {"id": "o-9"}, old_image={"id": "o-9", "status": "paid"}, target=target)
    finally:
        DISPATCHER.reset()
    # THEN they arrive in order, in the row's group, with their attributes
    messages = drain_messages(res.fifo_queue_url, 3, timeout=5)
    assert [json.loads(m["Body"])["Records"][0]["eventName"] for m in messages] == ["INSERT", "MODIFY", "REMOVE"]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"orders#id=o-9"}
    assert messages[0]["MessageAttributes"]["table"]["StringValue"] == "orders"
