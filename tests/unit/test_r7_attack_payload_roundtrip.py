"""Held: the payload rules of docs/api.md, as a user meets them under capture(): message bodies
(SQS and SNS) encode Decimal (exact digits, a whole one as an int), UUID, datetime, date, Enum,
nested dataclasses and a pydantic model (its Decimal as a string); task arguments come back as
the same Decimal, UUID and bytes, nested; what the codecs cannot carry (a datetime or a dataclass
as a task argument, bytes in a body) is refused at the call with a TypeError that says what to use."""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from handler_lib import defer
from handler_lib.testing import capture

GOT: list[tuple[tuple[Any, ...], dict[str, Any]]] = []


@defer.task
def keep(*args: Any, **kwargs: Any) -> None:
    GOT.append((args, kwargs))


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Line:
    sku: str
    price: Decimal
    at: dt.datetime
    nested: dict[str, Any]


class Order(BaseModel):
    total: Decimal
    id: uuid.UUID


U = uuid.UUID(int=7)
WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/q"


def test_bodies_and_task_arguments_round_trip_as_documented() -> None:
    body = {"d": Decimal("1.10"), "whole": Decimal("3"), "u": U, "t": WHEN, "day": dt.date(2026, 1, 2),
            "c": Color.RED, "line": Line("s", Decimal("9.90"), WHEN, {"deep": [Decimal("0.1"), U]}),
            "m": Order(total=Decimal("19.90"), id=U)}

    @defer
    def handler(event: Any, context: Any) -> int:
        defer.sqs(QUEUE, body)
        defer.sns("arn:aws:sns:us-east-1:123456789012:t", body)
        keep.defer(Decimal("1.10"), U, b"\x00\xff", [Decimal("2")], k={"u": U, "b": b"x"})
        return 1

    with capture() as deferred:
        handler({}, None)
    for text in (deferred.sqs[0].body, deferred.sns[0].message):
        assert '"d":1.10' in text and '"whole":3,' in text
        read = json.loads(text, parse_float=Decimal)
        assert read["d"] == Decimal("1.10") and read["u"] == str(U) and read["t"] == "2026-01-02T03:04:05+00:00"
        assert read["day"] == "2026-01-02" and read["c"] == "red"
        assert read["line"] == {"sku": "s", "price": Decimal("9.90"), "at": "2026-01-02T03:04:05+00:00",
                                "nested": {"deep": [Decimal("0.1"), str(U)]}}
        assert read["m"] == {"total": "19.90", "id": str(U)}
    GOT.clear()
    assert deferred.run_tasks() == [None]
    assert GOT == [((Decimal("1.10"), U, b"\x00\xff", [Decimal("2")]), {"k": {"u": U, "b": b"x"}})]
    assert isinstance(GOT[0][0][0], Decimal) and isinstance(GOT[0][0][1], uuid.UUID)


@pytest.mark.parametrize("value", [WHEN, Line("s", Decimal(1), WHEN, {})], ids=["datetime", "dataclass"])
def test_a_task_argument_msgpack_cannot_carry_is_refused_at_the_call(value: Any) -> None:
    @defer
    def handler(event: Any, context: Any) -> int:
        keep.defer(value)
        return 1

    with capture(), pytest.raises(TypeError, match="UUID and Decimal"):
        handler({}, None)


def test_bytes_in_a_body_is_refused_at_the_call() -> None:
    @defer
    def handler(event: Any, context: Any) -> int:
        defer.sqs(QUEUE, {"b": b"x"})
        return 1

    with capture(), pytest.raises(TypeError, match="json_default"):
        handler({}, None)
