"""The drain's accounting, with in-memory sinks (pure logic; real AWS calls are in integration)."""

import threading
import time
from typing import Any, Dict, List

from handler_lib import wire
from handler_lib.config import Config
from handler_lib.engine.drain import Drainer, backoff_s
from handler_lib.engine.outcome import Outcome
from handler_lib.engine.pending import PendingQueue
from handler_lib.engine.sinks.base import Sink
from handler_lib.engine.tasks import TaskRunner


class ScriptedSink(Sink):
    """Fails entries per a script {item id: [code for attempt 1, code for attempt 2, ...]}."""

    service = "sqs"
    max_batch_bytes = 1000

    def __init__(self, script: Dict[str, List[str]]) -> None:
        super().__init__(lambda service: None)
        self.script = script
        self.calls: List[List[str]] = []
        self.attempts: Dict[str, int] = {}
        self.lock = threading.Lock()

    def entry(self, item: Any, entry_id: str) -> Dict[str, Any]:
        return {"Id": entry_id, "item_id": item.id}

    def entry_size(self, item: Any) -> int:
        return len(item.body)

    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        failed = []
        with self.lock:
            self.calls.append([e["item_id"] for e in entries])
            for e in entries:
                n = self.attempts[e["item_id"]] = self.attempts.get(e["item_id"], 0) + 1
                codes = self.script.get(e["item_id"], [])
                if n <= len(codes) and codes[n - 1]:
                    failed.append({"Id": e["Id"], "Code": codes[n - 1], "Message": "scripted",
                                   "SenderFault": codes[n - 1] == "InvalidParameterValue"})
        return {"Failed": failed}

    def failures(self, response, entries):
        return {f["Id"]: (f["Code"], f["Message"], f["SenderFault"]) for f in response["Failed"]}


def make(script, **config) -> tuple:
    queue = PendingQueue()
    sink = ScriptedSink(script)
    drainer = Drainer(queue, {"sqs": sink}, TaskRunner(), Config(**{"dlq_url": "https://sqs/dlq", **config}))
    return queue, sink, drainer


def items(n: int, body: str = "m"):
    return [wire.SqsItem(f"i{k}", "r", 0, "https://sqs/q", body) for k in range(n)]


def test_every_item_ends_delivered_or_dead_lettered_exactly_once():
    script = {"i1": ["InternalError"], "i2": ["InternalError", "InternalError"], "i3": ["InvalidParameterValue"],
              "i4": ["InternalError"] * 10, "i5": ["InternalError"] * 2 + [""]}
    queue, sink, drainer = make(script, max_attempts=3)
    for it in items(25):
        queue.add(it)
    report = drainer.drain(time.monotonic() + 10)
    assert len(queue) == 0
    assert report.delivered == 25 - 2  # the 2 dead letters (for i3 and i4) count as dead_lettered
    assert report.dead_lettered == 2 and report.retried == 1 + 2 + 2 + 2
    assert sink.attempts["i3"] == 1  # a sender fault is not retried
    assert sink.attempts["i4"] == 3  # max_attempts
    dlq_calls = [c for c in sink.calls if any(i.endswith("~dlq") for i in c)]
    assert sorted(i for c in dlq_calls for i in c) == ["i3~dlq", "i4~dlq"]


def test_batches_hold_at_most_ten_entries_and_the_byte_limit():
    queue, sink, drainer = make({})
    for it in items(35, body="x" * 300):
        queue.add(it)
    drainer.drain(time.monotonic() + 5)
    assert all(len(c) <= 3 for c in sink.calls)  # 3 * 300 <= 1000 < 4 * 300
    assert sorted(i for c in sink.calls for i in c) == sorted(f"i{k}" for k in range(35))


def test_throttling_and_outages_back_off_without_using_up_attempts():
    queue, sink, drainer = make({"i0": ["Throttling"] * 4, "i1": ["Defer.TransportError"] * 4}, max_attempts=2)
    for it in items(2):
        queue.add(it)
    report = drainer.drain(time.monotonic() + 10)
    assert report.delivered == 2 and report.dead_lettered == 0
    assert sink.attempts == {"i0": 5, "i1": 5}


def test_nothing_is_started_after_the_stop_time_and_the_rest_is_carried_over():
    queue, sink, drainer = make({"i0": ["InternalError"] * 3})
    queue.add(items(1)[0])
    report = drainer.drain(time.monotonic() + 0.02)  # the backoff outlives the window
    assert report.carried_over == 1 and len(queue) == 1
    report = drainer.drain(time.monotonic() + 10)  # the next invoke finishes it
    assert report.delivered == 1 and len(queue) == 0


def test_backoff_grows_and_is_capped():
    assert backoff_s(1, lambda: 1.0) < backoff_s(3, lambda: 1.0) < backoff_s(30, lambda: 1.0) == 5.0
    assert backoff_s(1, lambda: 0.0) == backoff_s(1, lambda: 1.0) / 2


def test_outcome_classification():
    assert Outcome.failure("i", "ThrottlingException", "", sender_fault=True).retryable
    assert not Outcome.failure("i", "AWS.SimpleQueueService.NonExistentQueue", "", sender_fault=True).retryable
    assert not Outcome.failure("i", "AccessDeniedException", "").retryable
    assert Outcome.failure("i", "Defer.TransportError", "").retryable
    assert Outcome.failure("i", "SomethingNew", "").retryable  # an unknown server-side fault is retried


def test_a_fifo_group_starts_nothing_behind_an_item_in_flight_or_backing_off():
    from handler_lib.engine.batching import admissible
    from handler_lib.engine.pending import Entry

    def entry(item_id, group, *, in_flight=False, not_before=0.0):
        item = wire.SqsItem(item_id, "r", 0, "https://sqs/q.fifo", "m", group)
        return Entry(item, in_flight=in_flight, not_before=not_before)

    entries = [entry("a0", "A", not_before=5.0), entry("a1", "A"),  # A's head backs off
               entry("b0", "B", in_flight=True), entry("b1", "B"),  # B has its head in flight
               entry("c0", "C"), entry("c1", "C"), entry("c2", "C"),  # C: its oldest item only
               *(Entry(i) for i in items(2))]  # a standard queue: no order to keep
    assert admissible([*entries], 1.0, 0) == {"c0", "i0", "i1"}
    assert admissible([*entries], 6.0, 0) == {"a0", "c0", "i0", "i1"}
