"""Items sent outside any invoke are confirmed too: those from a thread of the handler's own
that outlives its invoke, and from an asyncio task that outlives its app call (``defer.asgi``).
They go with the next invoke's confirmation; what the extension does not hold, the handler
delivers itself. Before, they were kept on the ended invoke, where nothing settled them.

The "extension" is the real channel reader in a process of its own (tests/support/channel_host),
stopped with SIGSTOP where a test needs frames to sit unread; the queue is moto's.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from types import SimpleNamespace
from typing import Any, Iterator, List

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from handler_lib import defer
from handler_lib._dispatch import DISPATCHER
from tests.asgi.test_asgi_handler import http_event
from tests.support import channel_host
from tests.support.moto_server import drain_queue
from tests.support.rie import REPO_ROOT
from tests.support.waiting import wait_until


@pytest.fixture
def reader(tmp_path, monkeypatch) -> Iterator[subprocess.Popen]:
    """The channel reader on a socket of this test's own; the dispatcher dials it."""
    sock = str(tmp_path / "defer.sock")
    proc = channel_host.spawn(sock)
    monkeypatch.setenv("DEFER_SOCKET", sock)
    monkeypatch.setenv("DEFER_ACK_TIMEOUT_MS", "300")
    DISPATCHER.reset()
    yield proc
    DISPATCHER.reset()
    proc.kill()
    proc.wait()


def _bodies(queue_url: str, count: int) -> List[Any]:
    return [b.get("n") for b in drain_queue(queue_url, count, timeout=5)]


def _thread_handler(queue_url: str, gate: threading.Event, done: threading.Event) -> Any:
    @defer
    def handler(event, context):
        if event.get("spawn"):
            def later() -> None:  # the handler's own thread, not defer.after: nothing waits for it
                gate.wait(5)
                defer.sqs(queue_url, {"n": "late"})
                done.set()
            threading.Thread(target=later, daemon=True).start()
        defer.sqs(queue_url, {"n": event["n"]})
        return "ok"
    return handler


def test_an_item_from_a_thread_that_outlived_its_invoke_is_delivered_by_the_next_invoke(reader, aws_resources):
    res = aws_resources()
    gate, done = threading.Event(), threading.Event()
    handler = _thread_handler(res.queue_url, gate, done)
    assert handler({"n": 1, "spawn": True}, SimpleNamespace(aws_request_id="first")) == "ok"
    # WHEN the thread defers after the invoke ended, into an extension that reads nothing more
    os.kill(reader.pid, signal.SIGSTOP)
    gate.set()
    assert done.wait(5)
    with pytest.warns(RuntimeWarning, match="no confirmation"):
        assert handler({"n": 2}, SimpleNamespace(aws_request_id="second")) == "ok"
    # THEN the next invoke delivered it itself, with its own unread item (the first was read)
    assert sorted(map(str, _bodies(res.queue_url, 2))) == ["2", "late"]


def test_a_loose_item_the_extension_holds_is_confirmed_not_delivered_twice(reader, aws_resources):
    res = aws_resources()
    gate, done = threading.Event(), threading.Event()
    handler = _thread_handler(res.queue_url, gate, done)
    handler({"n": 1, "spawn": True}, SimpleNamespace(aws_request_id="first"))
    gate.set()
    assert done.wait(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a delivery from the function would warn
        assert handler({"n": 2}, SimpleNamespace(aws_request_id="second")) == "ok"
    # the reader holds all three (it delivers nothing): none went to the queue from the function
    assert drain_queue(res.queue_url, 1, timeout=0.5) == []


def test_an_item_from_an_asyncio_task_that_outlived_its_app_call_is_not_lost(reader, aws_resources):
    res = aws_resources()
    gate = threading.Event()
    finished = threading.Event()
    tasks: List[asyncio.Task] = []

    async def linger() -> None:  # fire and forget: the app call does not wait for it
        while not gate.is_set():
            await asyncio.sleep(0.01)
        defer.sqs(res.queue_url, {"n": "late"})
        finished.set()

    async def route(request: Any) -> PlainTextResponse:
        if request.query_params.get("spawn"):
            tasks.append(asyncio.ensure_future(linger()))
        defer.sqs(res.queue_url, {"n": request.query_params["n"]})
        return PlainTextResponse("ok")

    handler = defer.asgi(Starlette(routes=[Route("/", route)]), lifespan="off")
    first = http_event("GET", "/")
    first["rawQueryString"] = "n=1&spawn=1"
    assert handler(first, SimpleNamespace(aws_request_id="first", get_remaining_time_in_millis=lambda: 9000)
                   )["statusCode"] == 200
    # the rest of the first app call may end its invoke on a post-response thread: let it be confirmed
    wait_until(lambda: not any(t.name == "defer-after-first" for t in threading.enumerate()), 5,
               message="the first invoke did not end")
    os.kill(reader.pid, signal.SIGSTOP)
    gate.set()
    assert finished.wait(5)
    second = http_event("GET", "/")
    second["rawQueryString"] = "n=2"
    with warnings.catch_warnings():  # the rest of the app call may end on a post-response thread
        warnings.simplefilter("ignore", RuntimeWarning)
        handler(second, SimpleNamespace(aws_request_id="second", get_remaining_time_in_millis=lambda: 9000))
        # THEN the late item was delivered by the function, with the second invoke's own
        assert sorted(map(str, _bodies(res.queue_url, 2))) == ["2", "late"]


RESTORED = """
import ctypes, os, sys
from types import SimpleNamespace
from handler_lib import defer

@defer
def handler(event, context):
    defer.sqs(sys.argv[1], {"n": "invoke"})

defer.sqs(sys.argv[1], {"n": "init"})  # at init, after the handler is defined: a loose item
for k in range(2):  # libc's fork runs no at-fork hook: a copy of the initialised memory, as a restore makes
    pid = ctypes.CDLL(None).fork()
    if pid == 0:
        handler({}, SimpleNamespace(aws_request_id=f"restored-{k}"))
        os._exit(0)
    os.waitpid(pid, 0)
"""


def test_a_snapstart_restore_does_not_deliver_the_items_of_init_again(reader, aws_resources):
    # GIVEN a loose item sent at init to the extension, which holds it (and is snapshotted with it)
    res = aws_resources()
    env = {**os.environ, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start", "DEFER_ACK_TIMEOUT_MS": "2000"}
    # WHEN two environments restored from that snapshot each run an invoke
    out = subprocess.run([sys.executable, "-c", RESTORED, res.queue_url], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # THEN neither delivered the init item itself: it went over the connection from before the
    # snapshot, which a new one replaced, so the new one's confirmation could not count it
    assert "delivered" not in out.stderr, out.stderr
    assert drain_queue(res.queue_url, 1, timeout=0.5) == []


FORKED = """
import gc, os, sys, tracemalloc
from types import SimpleNamespace
from handler_lib import defer

@defer
def handler(event, context):
    defer.sqs(sys.argv[1], {"n": "parent"})

handler({}, SimpleNamespace(aws_request_id="parent-1"))
r, w = os.pipe()
if os.fork() == 0:  # a worker of the handler's own (multiprocessing's fork start method)
    payload = {"pad": "x" * 200}
    defer.sqs(sys.argv[1], payload)  # the child's connection
    gc.collect()
    tracemalloc.start()
    for _ in range(5000):
        defer.sqs(sys.argv[1], payload)
    gc.collect()
    os.write(w, str(tracemalloc.get_traced_memory()[0]).encode())
    os._exit(0)
os.wait()
print(os.read(r, 100).decode())
"""


def test_a_forked_child_keeps_no_memory_for_the_items_it_defers(reader, aws_resources):
    res = aws_resources()
    out = subprocess.run([sys.executable, "-c", FORKED, res.queue_url], cwd=REPO_ROOT,
                         env={**os.environ, "DEFER_MODE": "extension"}, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    # No invoke ends in the child, so nothing would ever confirm (and release) what it kept
    held = int(out.stdout)
    assert held < 250_000, f"{held} bytes still held after 5000 items"


def test_more_loose_items_than_the_extension_keeps_ids_of_are_confirmed_by_their_count(
        reader, aws_resources, monkeypatch):
    # GIVEN a thread of the handler's own that defers 6,000 items between two invokes: more than
    # the extension keeps the ids of (4,096), though it holds them all
    res = aws_resources()
    monkeypatch.setenv("DEFER_INLINE_BUDGET_MS", "1000")
    gate, done = threading.Event(), threading.Event()

    @defer
    def handler(event, context):
        return "ok"

    def burst() -> None:
        gate.wait(5)
        for n in range(6000):
            defer.sqs(res.queue_url, {"n": n})
        done.set()

    handler({}, SimpleNamespace(aws_request_id="first"))
    threading.Thread(target=burst, daemon=True).start()
    gate.set()
    assert done.wait(10)
    # WHEN the next invoke ends
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a delivery from the function would warn
        assert handler({}, SimpleNamespace(aws_request_id="second")) == "ok"
    # THEN the function delivered none of them itself (it delivered the 1,904 oldest, taking its
    # whole inline budget)
    assert drain_queue(res.queue_url, 1, timeout=0.5) == []


def test_what_the_function_delivers_after_its_response_stops_at_the_invoke_deadline(
        reader, aws_resources, fault_proxy, monkeypatch):
    # GIVEN an invoke with 1.5 s left, post-response work (so it ends on a thread of its own,
    # after the handler returned), an extension that confirms nothing, and SQS throttling
    res = aws_resources()
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint_url)
    monkeypatch.setenv("DEFER_INLINE_BUDGET_MS", "5000")
    fault_proxy.throttle("SendMessageBatch")
    deadline = time.monotonic() + 1.5

    @defer
    def handler(event, context):
        if event.get("after"):
            defer.sqs(res.queue_url, {"n": 1})
            defer.after(lambda: None)
        return "ok"

    context = SimpleNamespace(aws_request_id="deadline",
                              get_remaining_time_in_millis=lambda: int((deadline - time.monotonic()) * 1000))
    handler({}, SimpleNamespace(aws_request_id="first"))  # the connection, confirmed
    os.kill(reader.pid, signal.SIGSTOP)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert handler({"after": True}, context) == "ok"
        # THEN its delivery gives up by the deadline less the margin (0.3 s), not after the
        # 5 s budget (the invoke's clock was gone once the handler had returned)
        wait_until(lambda: not any(t.name == "defer-after-deadline" for t in threading.enumerate()), 2.5,
                   message="the delivery after the response ran past the invoke's deadline")


def test_loose_items_of_a_replaced_connection_are_delivered_not_counted_as_confirmed(reader, aws_resources,
                                                                                     tmp_path):
    """The confirmation of loose items counts what came over the current connection; one
    sent over a connection that was replaced since cannot be confirmed by it."""
    from handler_lib import wire

    res = aws_resources()

    @defer
    def handler(event, context):
        return "ok"

    handler({}, SimpleNamespace(aws_request_id="first"))
    defer.sqs(res.queue_url, {"n": "a"})  # loose, over the first connection
    wait_until(lambda: DISPATCHER._channel is not None and DISPATCHER._loose, 2, message="a not sent")
    # WHEN that extension dies with it (it read it) and a new one takes the socket
    reader.kill()
    reader.wait()
    sock = os.environ["DEFER_SOCKET"]
    second = channel_host.spawn(sock)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "no confirmation" for "a"
            defer.sqs(res.queue_url, {"n": "b"})  # finds the first connection broken: goes over a new one
            defer.sqs(res.queue_url, {"n": "c"})
            # an item the new extension counts that the handler has not filed yet (a thread's,
            # between its send and its filing): the count now covers as many items as were filed
            channel = DISPATCHER._channel
            channel.send(wire.encode(wire.SqsItem("racing-d", "", time.time_ns() // 1000, res.queue_url, "{}")))
            handler({}, SimpleNamespace(aws_request_id="second"))
        # THEN "a" was delivered by the function (the dead extension had it); the new one holds the rest
        assert [m["n"] for m in drain_queue(res.queue_url, 1, timeout=5)] == ["a"]
        assert drain_queue(res.queue_url, 1, timeout=0.5) == []
    finally:
        second.kill()
        second.wait()
