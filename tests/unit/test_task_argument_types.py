"""Task arguments keep their Python types wherever the task runs: UUID and Decimal (which
defer.sqs sends as JSON text) reach the task as UUID and Decimal, through the wire, the
journal and a dead letter's exact form; anything else unknown is still refused at the call."""

from __future__ import annotations

import base64
import json
import uuid
from decimal import Decimal

import msgpack
import pytest

from handler_lib import defer, wire
from handler_lib.engine.dead_letters import dead_letter_body
from handler_lib.engine.journal import Journal
from handler_lib.engine.pending import PendingQueue
from handler_lib.testing import capture

ORDER = uuid.UUID("6f1c2a4e-8b1d-4c1e-9f00-0123456789ab")
seen: list = []


@defer.task
def charge(order_id: uuid.UUID, amount: Decimal, *, lines: dict | None = None) -> None:
    seen.append((order_id, amount, lines))


def test_uuid_and_decimal_arguments_reach_the_task_as_uuid_and_decimal():
    seen.clear()
    lines = {"total": Decimal("19.90"), "ids": [uuid.UUID(int=7)], 3: Decimal("-0.000001")}
    with capture() as deferred:
        charge.defer(ORDER, Decimal("1E+2"), lines=lines)
    (task,) = deferred.tasks
    assert task.args == [ORDER, Decimal("1E+2")] and task.kwargs == {"lines": lines}
    deferred.run_tasks()
    ((order_id, amount, got_lines),) = seen
    assert (type(order_id), type(amount), type(got_lines["total"])) == (uuid.UUID, Decimal, Decimal)
    assert got_lines == lines and str(amount) == "1E+2"  # exactly, not as a float


def test_they_survive_the_frame_codec_and_a_journal_replay(tmp_path):
    with capture() as deferred:
        charge.defer(ORDER, Decimal("0.1"))
    (task,) = deferred.tasks
    frame = wire.encode(task)
    assert wire.decode(frame[wire.HEADER.size:]) == task
    queue = PendingQueue(Journal(str(tmp_path)))
    queue.add(task)
    queue.journal.close()  # as a killed extension's lock goes
    (replayed,) = Journal(str(tmp_path)).replayed
    assert replayed.args == [ORDER, Decimal("0.1")] and isinstance(replayed.args[0], uuid.UUID)


def test_a_dead_letter_shows_them_as_text_and_keeps_them_exactly():
    with capture() as deferred:
        charge.defer(ORDER, Decimal("2.50"))
    (task,) = deferred.tasks
    letter = json.loads(dead_letter_body(task, "Defer.TaskFailed", "boom", 3))
    assert letter["item"]["args"] == [str(ORDER), "2.50"]
    assert wire.decode(base64.b64decode(letter["wire"])) == task


@pytest.mark.parametrize("code, data", [(wire.EXT_UUID, b"short"), (wire.EXT_DECIMAL, b"\xff\xfe"),
                                        (wire.EXT_DECIMAL, b"not a number"), (9, b"other")])
def test_an_extension_value_this_library_did_not_write_reads_back_as_it_came(code, data):
    body = msgpack.packb({"v": wire.PROTOCOL_VERSION, "k": "task", "id": "i", "rid": "r", "ts": 1,
                          "fn": "m:f", "args": [msgpack.ExtType(code, data)], "kwargs": {}}, use_bin_type=True)
    assert wire.decode(body).args == [msgpack.ExtType(code, data)]


def test_other_types_are_still_refused_at_the_call_with_nothing_queued():
    with capture() as deferred:
        with pytest.raises(TypeError, match="UUID and Decimal"):
            charge.defer(ORDER, Decimal(1), lines={"when": object()})
        with pytest.raises(TypeError):
            charge.defer({1, 2}, Decimal(1))
    assert list(deferred) == []
