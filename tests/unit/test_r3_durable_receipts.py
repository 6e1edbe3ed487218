"""Receipts belong to their connection: concurrency cannot evict another invoke's receipts.

On Managed Instances many requests are open at once, each worker process on a connection of
its own. The ack of one must confirm its items however many other invokes are open meanwhile
(a forgotten receipt makes the function deliver the item again: a needless duplicate).
Pure logic over the in-memory channel; the real socket is in
tests/integration/test_r3_durable_receipts_socket.py."""

from __future__ import annotations

from typing import Any

from extension.memory_channel import MemoryChannel
from extension.runner import Runner
from handler_lib import handoff, wire
from handler_lib.config import Config
from handler_lib.engine.drain import Drainer
from handler_lib.engine.pending import PendingQueue
from handler_lib.engine.tasks import TaskRunner

OPEN_AT_ONCE = handoff.RECENT_REQUESTS + 44


def make() -> Any:
    config = Config(deadline_margin_ms=0)
    queue = PendingQueue()
    drainer = Drainer(queue, {}, TaskRunner(layer_roots=[]), config)
    channel = MemoryChannel()
    runner = Runner(config, queue, drainer, channel)
    channel.start(runner.handlers())
    return channel, runner


def item(n: int, request_id: str) -> wire.SqsItem:
    return wire.SqsItem(f"i{n}", request_id, 0, "https://sqs/q", f"m{n}")


def test_more_open_invokes_than_the_old_global_bound_each_get_their_own_items_confirmed():
    channel, _ = make()
    workers = [channel.connect() for _ in range(OPEN_AT_ONCE)]
    for n, peer in enumerate(workers):  # every request is open before any ends
        channel.send(peer, item(n, f"r{n}"))
    acks = [channel.send(peer, wire.EndOfInvoke(f"r{n}", 1, 0, 0)) for n, peer in enumerate(workers)]
    assert [a.count if a else None for a in acks] == [1] * OPEN_AT_ONCE


def test_one_connection_with_many_invokes_open_does_not_evict_another_connections_receipts():
    channel, _ = make()
    quiet, busy = channel.connect(), channel.connect()
    channel.send(quiet, item(0, "quiet-1"))
    for n in range(1, OPEN_AT_ONCE):  # a connection that never ends its invokes (a flood)
        channel.send(busy, item(n, f"busy-{n}"))
    assert channel.send(quiet, wire.EndOfInvoke("quiet-1", 1, 0, 0)) == wire.Ack("quiet-1", 1)


def test_receipts_are_freed_at_their_end_marker_and_with_their_connection():
    channel, runner = make()
    peer = channel.connect()
    channel.send(peer, item(0, "r1"))
    channel.send(peer, wire.EndOfInvoke("r1", 1, 0, 0))
    again = channel.send(peer, wire.EndOfInvoke("r1", 1, 0, 0))  # a replayed marker confirms nothing
    assert again is not None and again.count == 0
    channel.send(peer, item(1, "r2"))
    assert len(peer.receipts) == 1
    other = channel.connect()
    assert channel.send(other, wire.EndOfInvoke("r2", 1, 0, 0)).count == 0  # not its connection's
    channel.close(peer)
    assert len(peer.receipts) == 0


def test_a_connections_own_bound_forgets_only_its_own_oldest_open_invoke():
    receipts = handoff.InvokeReceipts(limit=2)
    for rid in ("r1", "r2", "r3"):
        receipts.received(item(0, rid))
    assert receipts.confirm(wire.EndOfInvoke("r1", 1, 0, 0)).count == 0  # the function delivers it
    assert receipts.confirm(wire.EndOfInvoke("r3", 1, 0, 0)).count == 1
