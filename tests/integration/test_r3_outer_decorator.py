"""An outer decorator that answers without calling the ``@defer`` handler holds no invoke.

Under RIE or ``sam local`` without the exec wrapper there is no Telemetry API and no Runtime
API proxy: the extension saw a ``@defer`` process connect, so it waits for that invoke's end
marker. An outer decorator that returns (a cache hit, Powertools' ``@idempotent`` on a
repeated request) or raises before calling the ``@defer`` handler sent none, and the invoke
was held to its deadline (7.7 s of 8). The function's process now says when the runtime
posted the response of an invoke its ``@defer`` handler was not called for.

Real parts: AWS's RIE with the built layer, the runtime (awslambdaric), Powertools'
``@idempotent``, moto. The in-process tests drive awslambdaric's own ``handle_event_request``
and runtime client (only its native HTTP call is replaced) against the real channel reader.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest

from tests.support.moto_server import drain_queue
from tests.support.waiting import wait_until

FUNCTION_DIR = Path(__file__).parent / "functions" / "outer"
TIMEOUT_S = 8
HELD = "no end-of-invoke marker before the deadline"
UNREPORTED = "does not report when it posts a response"  # the fallback: drained at once


@pytest.fixture
def start_outer(rie_factory, built_layer, aws_resources, fault_proxy, tmp_path):
    """start(handler) runs functions/outer's ``handler`` under RIE with the built layer, without
    the exec wrapper (no proxy) and, as RIE has none, without Telemetry."""
    res = aws_resources()

    def start(handler: str = "app.handler", **extra: str):
        env = {**res.env(), "AWS_ENDPOINT_URL": fault_proxy.endpoint_url,
               "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal"),
               **extra}
        return rie_factory(built_layer, FUNCTION_DIR, handler, env=env, timeout_s=TIMEOUT_S)

    return start, res


@pytest.mark.parametrize("short_circuit", ["cached", "refuse"])
def test_an_outer_decorator_answering_without_the_defer_handler_is_not_held_under_rie(start_outer, short_circuit):
    start, res = start_outer
    rie = start()
    status, _, _ = rie.invoke({"tag": "first"})  # cold: the runtime and the extension start
    assert status == 200 and drain_queue(res.queue_url, 1, timeout=3) == [{"tag": "first"}]
    status, body, elapsed = rie.invoke({"tag": "hit", short_circuit: True})
    if short_circuit == "cached":
        assert status == 200 and json.loads(body) == {"cached": True}
    else:
        assert b"PermissionError" in body
    assert elapsed < TIMEOUT_S / 2, f"held {elapsed:.2f}s of {TIMEOUT_S}: the extension waited for a marker"
    tags = []
    for n in range(6):  # hits and misses alternate: each miss is drained in its own invoke
        status, _, elapsed = rie.invoke({"tag": f"n{n}", short_circuit: n % 2 == 1})
        assert elapsed < TIMEOUT_S / 2
        if n % 2 == 0:
            tags += [b["tag"] for b in drain_queue(res.queue_url, 1, timeout=3)]
    assert tags == ["n0", "n2", "n4"]
    assert drain_queue(res.queue_url, 0, timeout=1) == []  # nothing twice
    assert HELD not in rie.logs() and UNREPORTED not in rie.logs()  # ended exactly


def test_powertools_idempotent_repeat_is_answered_at_once_under_rie(start_outer):
    start, res = start_outer
    rie = start("app.idempotent_handler")
    status, body, _ = rie.invoke({"order": "o-1"})
    assert status == 200 and json.loads(body) == {"order": "o-1", "call": 1}
    assert drain_queue(res.queue_url, 1, timeout=3) == [{"order": "o-1", "call": 1}]
    for _ in range(2):  # a repeat: Powertools returns the stored response, @defer is not called
        status, body, elapsed = rie.invoke({"order": "o-1"})
        assert status == 200 and json.loads(body) == {"order": "o-1", "call": 1}
        assert elapsed < TIMEOUT_S / 2, f"held {elapsed:.2f}s of {TIMEOUT_S}"
    status, body, _ = rie.invoke({"order": "o-2"})
    assert json.loads(body) == {"order": "o-2", "call": 2}
    assert drain_queue(res.queue_url, 1, timeout=3) == [{"order": "o-2", "call": 2}]  # in its own invoke
    assert drain_queue(res.queue_url, 0, timeout=1) == []  # nothing twice
    assert HELD not in rie.logs() and UNREPORTED not in rie.logs()  # ended exactly


def test_defer_after_work_still_holds_its_invoke_under_rie(start_outer):
    """The @defer handler was called: its own marker ends the invoke, after its post-response
    work (RIE holds the response until the extension's next), not the response's post."""
    start, res = start_outer
    rie = start()
    rie.invoke({"tag": "warm"})
    assert drain_queue(res.queue_url, 1, timeout=3) == [{"tag": "warm"}]
    status, body, elapsed = rie.invoke({"tag": "slow", "after_s": 1.5})
    assert status == 200 and json.loads(body) == {"tag": "slow"}
    assert elapsed >= 1.5, f"the invoke ended {elapsed:.2f}s in, before its post-response work was done"
    # drained in that invoke: both are there already (RIE answered once the extension called next)
    assert sorted(b["tag"] for b in drain_queue(res.queue_url, 2, timeout=1)) == ["slow", "slow-after"]
    status, _, elapsed = rie.invoke({"tag": "hit", "cached": True})
    assert elapsed < TIMEOUT_S / 2
    assert drain_queue(res.queue_url, 0, timeout=1) == []
    assert HELD not in rie.logs() and UNREPORTED not in rie.logs()  # ended exactly


def test_where_the_runtime_cannot_report_its_posts_each_invoke_is_drained_at_once_under_rie(start_outer):
    """A runtime whose posts the function cannot see (not awslambdaric, or one of another
    shape), with neither Telemetry nor the exec wrapper: the extension cannot know when an
    invoke ends, so it drains at once; what is deferred later rides on the next drain."""
    start, res = start_outer
    rie = start(TEST_RUNTIME_OF_ANOTHER_SHAPE="1")
    for n in range(4):
        status, body, elapsed = rie.invoke({"tag": f"n{n}", "cached": n % 2 == 1})
        assert status == 200 and elapsed < TIMEOUT_S / 2, f"held {elapsed:.2f}s of {TIMEOUT_S}"
    rie.invoke({"tag": "last", "cached": True})  # a drain after n2's
    tags = sorted(b["tag"] for b in drain_queue(res.queue_url, 2, timeout=5))
    assert tags == ["n0", "n2"]  # late, not lost
    logs = rie.logs()
    assert logs.count(UNREPORTED) == 1
    assert HELD not in logs


def test_powertools_idempotent_repeat_in_the_sandbox(built_layer, aws_resources, packaged_function, tmp_path):
    """Where Telemetry is delivered (the sandbox, as Lambda), the repeat ended before too (at
    runtimeDone); now the runtime's post ends it, and nothing is delivered twice."""
    from lambda_sandbox import Sandbox

    res = aws_resources()
    env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, packaged_function("outer"), "app.idempotent_handler", timeout_s=TIMEOUT_S, env=env,
                  echo=False).start()
    try:
        for order, call in [("o-1", 1), ("o-1", 1), ("o-2", 2), ("o-2", 2), ("o-1", 1)]:
            result = box.invoke({"order": order})
            assert result.status == 200 and result.json() == {"order": order, "call": call}, result.body
            report = box.wait_for_report(result.request_id)
            assert report.duration_ms < TIMEOUT_S * 1000 / 2
        got = sorted((b["order"], b["call"]) for b in drain_queue(res.queue_url, 3, timeout=3))
        assert got == [("o-1", 1), ("o-2", 2)]  # one item per call of the @defer handler
        logs = "\n".join(line.text for line in box.logs)
        assert HELD not in logs and "RuntimeWarning" not in logs
    finally:
        box.stop()


# -- in process: awslambdaric's own request handling against the real channel reader -------

Event = Tuple[str, str]  # ("post" | "error" | "end", request id)


class _Runtime:
    """Stands in for awslambdaric's native ``runtime_client`` (the HTTP calls to the Runtime API)."""

    def __init__(self, events: List[Event]) -> None:
        self.events = events

    def post_invocation_result(self, invoke_id: str, *args: Any) -> None:
        self.events.append(("post", invoke_id))

    def post_error(self, invoke_id: str, *args: Any) -> None:
        self.events.append(("error", invoke_id))


@pytest.fixture
def awslambdaric_process(tmp_path, monkeypatch) -> Iterator[Tuple[Any, List[Event]]]:
    """(handle(handler, request_id, event), events): awslambdaric's handle_event_request with
    its LambdaRuntimeClient; what the runtime posted and which end markers the reader got, in order."""
    from awslambdaric import bootstrap, lambda_runtime_client
    from extension.channel import ChannelHandlers, ChannelServer
    from extension.listener import listen
    from handler_lib import wire
    from handler_lib._dispatch import DISPATCHER

    events: List[Event] = []
    lock = threading.Lock()

    def on_end(end: wire.EndOfInvoke) -> None:
        with lock:
            events.append(("end", end.request_id))

    sock = str(tmp_path / "defer.sock")
    server = ChannelServer(sock, listen(sock))
    server.start(ChannelHandlers(on_item=lambda item, body: None, on_end=on_end,
                                 on_hello=lambda peer, hello: None, on_close=lambda peer: None))
    monkeypatch.setenv("DEFER_SOCKET", sock)
    monkeypatch.setattr(lambda_runtime_client, "runtime_client", _Runtime(events))
    for cls in vars(lambda_runtime_client).values():  # the hook's patch is undone after the test
        if isinstance(cls, type):
            for name in ("post_invocation_result", "post_invocation_error"):
                if name in vars(cls):
                    monkeypatch.setattr(cls, name, vars(cls)[name])
    DISPATCHER.reset()
    client = lambda_runtime_client.LambdaRuntimeClient("127.0.0.1:9")

    def handle(handler: Any, request_id: str, event: Any) -> None:
        bootstrap.handle_event_request(client, handler, request_id, json.dumps(event).encode(),
                                       "application/json", None, None, "arn:aws:lambda:us-east-1:1:function:f",
                                       "9999999999999", None, bootstrap.StandardLogSink())

    try:
        yield handle, events
    finally:
        DISPATCHER.reset()
        server.close()


def _ends(events: List[Event], request_id: str) -> int:
    return events.count(("end", request_id))


def test_each_invoke_gets_one_end_marker_and_a_short_circuit_gets_it_at_the_post(awslambdaric_process):
    import functools

    from handler_lib import defer

    handle, events = awslambdaric_process
    release = threading.Event()

    def short_circuit(fn):
        @functools.wraps(fn)
        def outer(event, context):
            if event.get("cached"):
                return {"cached": True}
            if event.get("refuse"):
                raise PermissionError("no")
            return fn(event, context)
        return outer

    @short_circuit
    @defer
    def handler(event, context):
        defer.sqs("https://sqs.us-east-1.amazonaws.com/1/q", {"n": 1})
        if event.get("after"):
            defer.after(release.wait, 10)
        return {"ok": True}

    handle(handler, "called", {})
    assert events == [("end", "called"), ("post", "called")]  # the wrapper's own marker, once
    handle(handler, "hit", {"cached": True})
    assert events[2:] == [("post", "hit"), ("end", "hit")]  # at the post: the wrapper never ran
    handle(handler, "refused", {"refuse": True})
    assert events[4:] == [("error", "refused"), ("end", "refused")]
    handle(handler, "after", {"after": True})
    assert events[6:] == [("post", "after")]  # post-response work runs: no marker at the post
    release.set()
    wait_until(lambda: _ends(events, "after") == 1, 5, message=lambda: f"no end marker: {events}")
    handle(handler, "hit-2", {"cached": True})
    assert events[7:] == [("end", "after"), ("post", "hit-2"), ("end", "hit-2")]
    assert all(_ends(events, rid) == 1 for rid in ("called", "hit", "refused", "after", "hit-2"))
