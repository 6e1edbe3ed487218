"""Making a dead letter never fails, whatever the item holds (wire.decode lets it through)."""

from __future__ import annotations

import json

import msgpack
import pytest

from handler_lib import wire
from handler_lib.engine import dead_letters


def nested(depth: int):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


ODD_ARGS = {
    "timestamp": [msgpack.Timestamp(1_700_000_000, 5)],
    "ext": [msgpack.ExtType(42, b"\x00\xff")],
    "ext key": [{msgpack.ExtType(1, b"k"): 1}],
    "deep": [nested(900)],
    "deep dict": [{"a": nested(950)}],
}


@pytest.mark.parametrize("name", list(ODD_ARGS))
def test_a_letter_is_made_for_any_task_the_wire_can_carry(name):
    item = wire.TaskItem("t-1", "req", 1, "mod:fn", ODD_ARGS[name], {}, max_attempts=1)
    item = wire.decode(wire.pack_map(item.to_map()))  # as the extension has it
    body = dead_letters.dead_letter_body(item, "Defer.TaskNotFound", "no such task", 1)
    letter = json.loads(body)
    assert (letter["id"], letter["target"], letter["error"]["code"]) == ("t-1", "mod:fn", "Defer.TaskNotFound")
    assert len(body.encode()) <= dead_letters.LETTER_MAX_BYTES
    if letter["item"] is None:
        assert "could not be written as JSON" in letter["unrendered"]
    fields = dead_letters.describe(item, "Defer.TaskNotFound", "no such task", 1, log_payloads=True)
    json.dumps(fields)  # a log line's fields can always be written


def test_msgpack_types_are_readable_in_the_letter():
    item = wire.TaskItem("t-2", "req", 1, "mod:fn", ODD_ARGS["timestamp"] + ODD_ARGS["ext"], {})
    letter = json.loads(dead_letters.dead_letter_body(item, "C", "m", 1))
    assert letter["item"]["args"] == [{"msgpack_timestamp": [1_700_000_000, 5]},
                                      {"msgpack_ext": 42, "base64": "AP8="}]


def _redriven(body: str):
    from handler_lib.redrive import _item_of

    return _item_of(json.loads(body))


def test_a_letter_holds_its_item_exactly_or_says_it_cannot_be_redriven():
    plain = wire.SqsItem("s-1", "req", 1, "https://sqs/q", "é" * 10, attributes={"n": 3, "s": "x"})
    letter = json.loads(dead_letters.dead_letter_body(plain, "C", "m", 1))
    assert "wire" not in letter and "exact" not in letter  # JSON is the item exactly: no second copy
    binary = plain._replace(attributes={"blob": b"\x00\xff"})
    letter = json.loads(dead_letters.dead_letter_body(binary, "C", "m", 1))
    assert "wire" in letter and letter["item"]["attrs"] == {"blob": {"base64": "AP8="}}
    for item in (plain, binary):
        assert _redriven(dead_letters.dead_letter_body(item, "C", "m", 1)) == (item, "")


def test_when_both_copies_do_not_fit_the_readable_one_is_cut_and_the_exact_one_kept():
    item = wire.SqsItem("s-2", "req", 1, "https://sqs/q", "x" * 600_000, attributes={"blob": b"\x00"})
    body = dead_letters.dead_letter_body(item, "C", "m", 1)
    letter = json.loads(body)
    assert len(body.encode()) <= dead_letters.LETTER_MAX_BYTES
    assert letter["truncated"] is True and "wire" in letter
    assert _redriven(body) == (item, "")
    huge = item._replace(body="x" * 1_100_000)  # the exact form alone is too large: a prefix only
    body = dead_letters.dead_letter_body(huge, "C", "m", 1)
    assert len(body.encode()) <= dead_letters.LETTER_MAX_BYTES and "wire" not in json.loads(body)
    assert json.loads(body)["exact"] is False
    redriven, problem = _redriven(body)
    assert redriven is None and "truncated" in problem


def test_a_letter_without_a_readable_payload_still_redrives_from_its_wire_form():
    item = wire.TaskItem("t-3", "req", 1, "mod:fn", [nested(950)], {})
    item = wire.decode(wire.pack_map(item.to_map()))
    body = dead_letters.dead_letter_body(item, "C", "m", 1)
    assert json.loads(body)["item"] is None
    assert _redriven(body) == (item, "")


def test_a_letter_too_large_for_its_exact_form_keeps_the_readable_item_whole_and_says_it_is_not_exact():
    item = wire.SqsItem("s-4", "req", 1, "https://sqs/q", "x" * 900_000, attributes={"blob": b"\x00"})
    body = dead_letters.dead_letter_body(item, "C", "m", 1)
    letter = json.loads(body)
    assert letter["item"]["body"] == item.body and "truncated" not in letter
    assert "wire" not in letter and letter["exact"] is False
    redriven, problem = _redriven(body)
    assert redriven is None and "exactly" in problem
