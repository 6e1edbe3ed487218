"""JSON payloads as Powertools and boto3 users build them: DynamoDB numbers, dates, ids, models."""

import dataclasses
import datetime
import enum
import json
import subprocess
import sys
import uuid
from decimal import Decimal

import pydantic
import pytest

from handler_lib import defer
from handler_lib.testing import capture
from tests.conftest import REPO_ROOT

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"


class Status(enum.Enum):
    PAID = "paid"


@dataclasses.dataclass
class Line:
    sku: uuid.UUID
    price: Decimal


class Order(pydantic.BaseModel):
    id: str
    placed: datetime.datetime
    total: Decimal


def sqs_body(message):
    with capture() as deferred:
        defer.sqs(QUEUE, message)
    return deferred.sqs[0].body


def test_dynamodb_numbers_keep_their_exact_digits():
    body = sqs_body({"qty": Decimal("3"), "big": Decimal("1E+2"), "price": Decimal("19.90"),
                     "pi": Decimal("3.14159265358979323846264338327950288"), "tiny": Decimal("1E-7")})
    assert body == '{"qty":3,"big":100,"price":19.90,"pi":3.14159265358979323846264338327950288,"tiny":1E-7}'
    assert json.loads(body, parse_float=Decimal)["pi"] == Decimal("3.14159265358979323846264338327950288")


def test_dates_ids_enums_dataclasses_and_models_become_json():
    sku = uuid.UUID(int=7)
    body = sqs_body({"on": datetime.date(2026, 11, 27), "status": Status.PAID,
                     "line": Line(sku, Decimal("2.50")),
                     "order": Order(id="o-1", placed=datetime.datetime(2026, 11, 27, 9, 30, tzinfo=datetime.timezone.utc),
                                    total=Decimal("5"))})
    assert json.loads(body) == {
        "on": "2026-11-27", "status": "paid", "line": {"sku": str(sku), "price": 2.5},
        "order": {"id": "o-1", "placed": "2026-11-27T09:30:00Z", "total": "5"},  # pydantic's JSON form
    }
    assert json.loads(sqs_body(Line(sku, Decimal(1)))) == {"sku": str(sku), "price": 1}


class Invoice(pydantic.BaseModel):
    id: str
    total: Decimal


AMOUNTS = (Decimal("19.90"), Decimal("12345678901234567890.123456789"), Decimal("1E-7"))


def test_a_decimal_is_a_number_in_a_dict_and_a_string_in_a_model_in_one_body():
    body = sqs_body({"total": Decimal("19.90"), "invoice": Invoice(id="i-1", total=Decimal("19.90")),
                     "line": Line(uuid.UUID(int=1), Decimal("19.90"))})
    assert body == ('{"total":19.90,"invoice":{"id":"i-1","total":"19.90"},'
                    '"line":{"sku":"00000000-0000-0000-0000-000000000001","price":19.90}}')


@pytest.mark.parametrize("amount", AMOUNTS)
def test_each_form_reads_back_exactly_with_its_reader(amount):
    # exactly: the same digits (Decimal("19.9") == Decimal("19.90"), so compared as text)
    # a model, by the same model (pydantic, Powertools' parser)
    assert str(Invoice.model_validate_json(sqs_body(Invoice(id="i-1", total=amount))).total) == str(amount)
    # a dict, by json with Decimal for numbers; EventBridge's detail the same way
    assert str(json.loads(sqs_body({"total": amount}), parse_float=Decimal)["total"]) == str(amount)
    with capture() as deferred:
        defer.event("InvoiceIssued", {"total": amount}, source="shop")
    assert str(json.loads(deferred.events[0].detail, parse_float=Decimal)["total"]) == str(amount)


def test_a_models_numbers_go_as_numbers_through_its_model_dump():
    invoice = Invoice(id="i-1", total=Decimal("19.90"))
    assert sqs_body(invoice.model_dump()) == '{"id":"i-1","total":19.90}'


def test_why_a_model_keeps_its_decimals_as_strings():
    """pydantic reads a Decimal field exactly from a string only; a JSON number goes through
    float. If pydantic ever reads numbers exactly, models could send numbers too (docs/api.md)."""
    big = "12345678901234567890.123456789"
    assert str(Invoice.model_validate_json('{"id": "i-1", "total": "19.90"}').total) == "19.90"
    assert str(Invoice.model_validate_json(f'{{"id": "i-1", "total": "{big}"}}').total) == big
    assert str(Invoice.model_validate_json('{"id": "i-1", "total": 19.90}').total) == "19.9"
    assert str(Invoice.model_validate_json(f'{{"id": "i-1", "total": {big}}}').total) != big


def test_event_detail_from_a_model_gets_its_defer_id():
    with capture() as deferred:
        item_id = defer.event("OrderPlaced", Order(id="o-2", placed=datetime.datetime(2026, 1, 1), total=Decimal(1)),
                              source="shop")
    assert json.loads(deferred.events[0].detail)["defer_id"] == item_id


def test_json_default_hook_encodes_the_users_own_types():
    class Money:
        def __init__(self, cents):
            self.cents = cents

    with pytest.raises(TypeError, match="SQS message is not JSON-serializable.*json_default"):
        sqs_body({"m": Money(5)})
    defer.json_default = lambda value: {"cents": value.cents} if isinstance(value, Money) else str(value)
    try:
        assert defer.json_default is not None
        assert json.loads(sqs_body({"m": Money(5)})) == {"m": {"cents": 5}}
    finally:
        defer.json_default = None
    with pytest.raises(TypeError, match="json_default must be a function"):
        defer.json_default = "not callable"


def nested(depth):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("call, match", [
    (lambda: defer.sqs(QUEUE, {"f": float("nan")}), "SQS message is not valid JSON"),
    (lambda: defer.sns(TOPIC, [float("inf")]), "SNS message is not valid JSON"),
    (lambda: defer.event("T", {"f": float("-inf")}, source="s"), "event detail is not valid JSON"),
    (lambda: defer.event("T", '{"f": NaN}', source="s"), "event detail must be a JSON object: NaN"),
    (lambda: defer.sqs(QUEUE, {"d": Decimal("NaN")}), "SQS message is not valid JSON: Decimal NaN"),
    (lambda: defer.sqs(QUEUE, nested(100_000)), "SQS message is nested too deeply"),
    (lambda: defer.sns(TOPIC, {"s": "\ud800"}), "SNS message is not valid Unicode: a lone surrogate"),
    (lambda: defer.sqs(QUEUE, "text \udfff"), "SQS message is not valid Unicode"),
    (lambda: defer.event("T", {"s": "\ud800"}, source="s"), "event detail is not valid Unicode"),
])
def test_what_json_cannot_carry_is_refused_at_the_call(call, match):
    with capture() as deferred:
        with pytest.raises(ValueError, match=match):
            call()
    assert list(deferred) == []


def test_encoding_these_types_imports_nothing_at_cold_start():
    """pydantic (and decimal, uuid) are looked at only when the value is one of them."""
    code = ("import sys\nfrom handler_lib import defer\nfrom handler_lib.testing import capture\n"
            "import dataclasses\n@dataclasses.dataclass\nclass D:\n    x: int\n"
            "with capture():\n    defer.sqs('q', {'a': D(1), 'b': [1.5, 'x']})\n"
            "print(sorted(m for m in ('pydantic', 'decimal', 'uuid') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
