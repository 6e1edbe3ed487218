"""``@defer.task(queue=...)`` at the call: what is refused where, and what capture() shows."""

from __future__ import annotations

import json

import pytest

from handler_lib import defer
from handler_lib import _task_queue, wire
from handler_lib.testing import capture

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/reports"
FIFO = "https://sqs.us-east-1.amazonaws.com/123456789012/reports.fifo"
ran: list = []


@defer.task(queue=QUEUE, max_attempts=4)
def rebuild(day: str, *, blob: bytes = b"", keyed: dict | None = None) -> str:
    ran.append((day, blob, keyed))
    return day


@defer.task(queue=FIFO)
def ordered(n: int) -> None:
    ran.append(n)


@pytest.mark.parametrize("queue", ["", "reports", "sqs://x/y/z", "https://sqs.x/1 2/q", 7, b"https://a/b/c/d"])
def test_a_queue_that_is_not_an_sqs_url_is_refused_at_the_decorator(queue):
    with pytest.raises(ValueError, match="queue must be an SQS queue URL"):
        defer.task(queue=queue)


def test_arguments_the_task_cannot_take_are_refused_at_the_call_with_nothing_queued():
    with capture() as deferred:
        with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
            rebuild.defer("2026-12-01", colour="red")
        with pytest.raises(TypeError):
            rebuild.defer("2026-12-01", blob=object())
    assert list(deferred) == []


def test_a_queued_call_is_one_sqs_message_that_carries_the_task_exactly():
    ran.clear()
    with capture() as deferred:
        item_id = rebuild.defer("2026-12-01", blob=b"\x00\xff", keyed={1: "one"})
    (message,) = deferred.sqs
    assert (message.id, message.queue_url, deferred.tasks) == (item_id, QUEUE, [])
    envelope = json.loads(message.body)
    assert (envelope["lambda_defer"], envelope["defer_id"], envelope["task"]) == \
        ("task", item_id, f"{__name__}:rebuild")
    (task,) = deferred.queued_tasks
    assert (task.id, task.args, task.kwargs, task.max_attempts) == \
        (item_id, ["2026-12-01"], {"blob": b"\x00\xff", "keyed": {1: "one"}}, 4)
    assert deferred.run_tasks() == ["2026-12-01"]
    assert ran == [("2026-12-01", b"\x00\xff", {1: "one"})]


def test_on_a_fifo_queue_each_task_is_one_group_deduplicated_by_its_id():
    with capture() as deferred:
        ids = [ordered.defer(n) for n in range(3)]
    assert [(m.group_id, m.dedup_id) for m in deferred.sqs] == [(f"{__name__}:ordered", i) for i in ids]


@pytest.mark.parametrize("body, error", [
    (None, _task_queue.NotAQueuedTask), ("plain text", _task_queue.NotAQueuedTask),
    ('{"order": 1}', _task_queue.NotAQueuedTask), ('{"lambda_defer": "other"}', _task_queue.NotAQueuedTask),
    ('{"lambda_defer": "task", "wire": "%%%"}', ValueError),
    ('{"lambda_defer": "task", "wire": ""}', ValueError),
])
def test_a_body_is_read_as_a_task_only_when_it_is_one(body, error):
    with pytest.raises(error):
        _task_queue.task_of(body)


def test_a_payload_of_another_kind_or_that_contradicts_its_envelope_is_refused():
    with capture() as deferred:
        rebuild.defer("2026-12-01")
        defer.sqs(QUEUE, {"n": 1})
    queued, plain = deferred.sqs
    envelope = json.loads(queued.body)
    other = dict(envelope, wire=_task_queue.base64.b64encode(wire.pack_map(plain.to_map())).decode())
    with pytest.raises(ValueError, match="not a task"):
        _task_queue.task_of(json.dumps(other))
    with pytest.raises(ValueError, match="does not match its envelope"):
        _task_queue.task_of(json.dumps(dict(envelope, defer_id="someone-else")))
