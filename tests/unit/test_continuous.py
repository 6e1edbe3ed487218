"""Continuous delivery's batching window and its stop, with an in-memory sink (pure logic;
the layer on the sandbox's managed-instances mode is in tests/integration/test_managed_instances.py)."""

import time
from typing import Any, List

from extension.continuous import ContinuousDelivery, rejects_invoke
from extension.lambda_api import ExtensionsApiError, ShutdownEvent
from handler_lib import wire
from tests.support.waiting import wait_until
from tests.unit.test_drain import make


class _Runner:
    """What ContinuousDelivery uses of the runner: its queue and drainer, and where reports go."""

    def __init__(self, queue: Any, drainer: Any) -> None:
        self.queue, self.drainer = queue, drainer
        self.channel = type("Channel", (), {"recheck_backlog": lambda self: None})()
        self.accounted: List[Any] = []
        self.shutdowns: List[ShutdownEvent] = []

    def _account(self, report: Any, request_id: str) -> None:
        self.accounted.append(report)

    def on_shutdown(self, event: ShutdownEvent) -> None:
        self.shutdowns.append(event)


def _item(n: int, request: str) -> wire.SqsItem:
    """Deferred now: the batching window runs from the defer call."""
    return wire.SqsItem(f"{request}-{n}", request, time.time_ns() // 1000, "https://sqs/q", "m")


def _start(window_s: float) -> tuple:
    queue, sink, drainer = make({})
    runner = _Runner(queue, drainer)
    delivery = ContinuousDelivery(runner, window_s=window_s)
    delivery.start()
    return queue, sink, runner, delivery


def test_items_of_concurrent_requests_share_one_call():
    queue, sink, runner, delivery = _start(window_s=0.2)
    try:
        # GIVEN three requests deferring 2 items each, one after the other, within the window
        for request in ("a", "b", "c"):
            for n in range(2):
                queue.add(_item(n, request))
        # THEN one call carries all six
        wait_until(lambda: len(queue) == 0, 5, message="not delivered")
        assert [sorted(c) for c in sink.calls] == [sorted(f"{r}-{n}" for r in "abc" for n in range(2))]
        # AND an item that comes later has its own window, and its own call
        queue.add(_item(0, "d"))
        wait_until(lambda: len(queue) == 0, 5, message="not delivered")
        assert sink.calls[-1] == ["d-0"]
        wait_until(lambda: sum(r.delivered for r in runner.accounted) == 7, 5, message="not accounted")
    finally:
        delivery.on_shutdown(ShutdownEvent("spindown", 0))


def test_a_full_batch_goes_without_waiting_for_the_window():
    queue, sink, runner, delivery = _start(window_s=30.0)
    try:
        for n in range(10):
            queue.add(_item(n, "a"))
        wait_until(lambda: len(queue) == 0, 5, message="10 items of one target waited for the window")
        assert len(sink.calls) == 1 and len(sink.calls[0]) == 10
    finally:
        delivery.on_shutdown(ShutdownEvent("spindown", 0))


def test_shutdown_stops_delivery_before_the_shutdown_drain():
    queue, sink, runner, delivery = _start(window_s=30.0)
    queue.add(_item(0, "a"))  # held by the window
    started = time.monotonic()
    delivery.on_shutdown(ShutdownEvent("spindown", 0))
    assert time.monotonic() - started < 2  # the delivery thread ended within its cycle
    assert not delivery._thread.is_alive()
    assert [e.reason for e in runner.shutdowns] == ["spindown"]  # then the runner's SHUTDOWN drain
    assert sink.calls == [] and len(queue) == 1  # left to that drain, not sent by the thread


def test_an_item_deferred_long_ago_does_not_wait_for_a_window():
    # A retry after its backoff, or an item that reached the queue late, has had its window
    queue, sink, runner, delivery = _start(window_s=30.0)
    try:
        queue.add(wire.SqsItem("old", "r", time.time_ns() // 1000 - 31_000_000, "https://sqs/q", "m"))
        wait_until(lambda: len(queue) == 0, 5, message="an item past its window waited again")
        assert sink.calls == [["old"]]
    finally:
        delivery.on_shutdown(ShutdownEvent("spindown", 0))


def test_register_reply_refusing_invoke_is_recognised():
    refused = ExtensionsApiError(403, '{"errorType": "Extension.InvalidEventType", '
                                      '"errorMessage": "INVOKE: ErrorInvalidEventType"}')
    assert rejects_invoke(refused)
    assert not rejects_invoke(ExtensionsApiError(403, '{"errorType": "Extension.RegistrationClosed"}'))
    assert not rejects_invoke(ExtensionsApiError(500, "INVOKE InvalidEventType"))
