"""The per-invoke driver over the engine, driven through the in-memory channel: no socket,
no thread of the channel, no timing. Pure logic; the real socket and AWS are in integration/."""

from __future__ import annotations

import time
from typing import Any, Dict, List

from extension.lambda_api import InvokeEvent, ShutdownEvent
from extension.memory_channel import MemoryChannel
from extension.runner import Runner
from handler_lib import wire
from handler_lib.config import Config
from handler_lib.engine.drain import Drainer
from handler_lib.engine.pending import PendingQueue
from handler_lib.engine.sinks.base import Sink
from handler_lib.engine.tasks import TaskRunner


class RecordingSink(Sink):
    """Accepts every entry but those of ids in ``refuse`` (a permanent sender fault)."""

    service = "sqs"

    def __init__(self, refuse: frozenset = frozenset()) -> None:
        super().__init__(lambda service: None)
        self.sent: List[str] = []
        self.refuse = refuse

    def entry(self, item: Any, entry_id: str) -> Dict[str, Any]:
        return {"Id": entry_id, "item_id": item.id}

    def entry_size(self, item: Any) -> int:
        return len(item.body)

    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        failed = [{"Id": e["Id"], "Code": "InvalidParameterValue", "Message": "refused", "SenderFault": True}
                  for e in entries if e["item_id"] in self.refuse]
        self.sent += [e["item_id"] for e in entries if e["item_id"] not in self.refuse]
        return {"Failed": failed}


def make(refuse: frozenset = frozenset(), dlq: str = "") -> tuple:
    config = Config(dlq_url=dlq or None, deadline_margin_ms=0)
    queue = PendingQueue()
    sink = RecordingSink(refuse)
    drainer = Drainer(queue, {"sqs": sink}, TaskRunner(layer_roots=[]), config)
    channel = MemoryChannel()
    runner = Runner(config, queue, drainer, channel)
    channel.start(runner.handlers())
    return channel, runner, sink


def item(n: int, request_id: str) -> wire.SqsItem:
    return wire.SqsItem(f"i{n}", request_id, 0, "https://sqs/q", f"m{n}")


def invoke(request_id: str, seconds: float = 5.0) -> InvokeEvent:
    return InvokeEvent(request_id, int((time.time() + seconds) * 1000))


def test_an_invoke_is_confirmed_at_its_end_marker_and_drained_in_the_order_deferred():
    channel, runner, sink = make()
    peer = channel.connect()
    for n in range(5):
        channel.send(peer, item(n, "r1"))
    ack = channel.send(peer, wire.EndOfInvoke("r1", 5, 0, 0))
    assert ack == wire.Ack("r1", 5)
    report = runner.on_invoke(invoke("r1"))
    assert sink.sent == ["i0", "i1", "i2", "i3", "i4"]
    assert (report.received, report.delivered, report.carried_over) == (5, 5, 0)


def test_a_short_count_names_what_arrived_and_only_that_is_delivered_by_the_extension():
    channel, runner, sink = make()
    peer = channel.connect()
    channel.send(peer, item(0, "r1"))
    channel.send(peer, item(2, "r1"))  # i1 never arrived: the function delivers it itself
    ack = channel.send(peer, wire.EndOfInvoke("r1", 3, 0, 0))
    assert ack is not None and (ack.count, ack.ids) == (2, ["i0", "i2"])
    runner.on_invoke(invoke("r1"))
    assert sink.sent == ["i0", "i2"]


def test_loose_items_are_confirmed_by_their_own_connection_only():
    channel, runner, _ = make()
    first, second = channel.connect(), channel.connect()
    channel.send(first, item(0, ""))
    channel.send(first, item(1, ""))
    assert channel.send(second, wire.EndOfInvoke("", 2, 0, 0)) == wire.Ack("", 0, [])
    assert channel.send(first, wire.EndOfInvoke("", 2, 0, 0)) == wire.Ack("", 2, None)


def test_a_handler_whose_connection_closes_before_its_marker_is_drained_without_waiting():
    channel, runner, sink = make()
    peer = channel.connect()
    channel.send(peer, item(0, "r1"))
    channel.close(peer)
    started = time.monotonic()
    runner.on_invoke(invoke("r1", seconds=30))
    assert time.monotonic() - started < 5  # not the 30 s deadline
    assert sink.sent == ["i0"]


def test_a_refused_item_is_dead_lettered_and_at_spin_down_nothing_is_left_unaccounted():
    channel, runner, sink = make(refuse=frozenset({"i1"}))
    peer = channel.connect()
    for n in range(3):
        channel.send(peer, item(n, "r1"))
    channel.send(peer, wire.EndOfInvoke("r1", 3, 0, 0))
    report = runner.on_invoke(invoke("r1"))
    assert sink.sent == ["i0", "i2"] and report.given_up == 1 and report.given_up_ids == ["i1"]
    final = runner.on_shutdown(ShutdownEvent("spindown", int((time.time() + 2) * 1000)))
    assert final.carried_over == 0 and runner.queue.snapshot() == []
