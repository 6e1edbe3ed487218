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
