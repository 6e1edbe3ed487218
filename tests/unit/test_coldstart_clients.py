"""The AWS SDK loading after init (extension.main.SdkLoader over engine.clients.ClientFactory):
which clients it makes, that a drain waits for a client being made but never past its stop,
and that a client that cannot be made is a retry of each item, never an exception; with the
lean transport (DEFER_TRANSPORT=auto), that botocore loads only for the kinds that need it.

botocore's own loading is replaced by a session whose creation the test holds or fails
(``clients._session``); the factory's lock, the sinks, the lean clients and the drain are the
real ones (no request is sent in this file).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List

import pytest

from extension.main import SdkLoader
from handler_lib import wire
from handler_lib.config import Config
from handler_lib.engine import clients
from handler_lib.engine.clients import ClientFactory
from handler_lib.engine.drain import Drainer
from handler_lib.engine.outcome import TRANSPORT
from handler_lib.engine.pending import PendingQueue
from handler_lib.engine.sinks import make_sinks
from handler_lib.engine.tasks import TaskRunner

BOUND_S = 10.0  # no wait in these tests lasts longer; none should come near it


class FakeClient:
    def __init__(self, service: str, calls: List[str]) -> None:
        self.service = service
        self.calls = calls

    def send_message_batch(self, QueueUrl: str, Entries: List[Dict[str, Any]]) -> Dict[str, Any]:  # noqa: N803
        self.calls.append(f"{self.service}:{len(Entries)}")
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


class FakeSession:
    """What ``clients._session()`` returns: records the clients it is asked for."""

    def __init__(self) -> None:
        self.created: List[str] = []
        self.calls: List[str] = []

    def create_client(self, service: str, config: Any = None) -> FakeClient:
        self.created.append(service)
        return FakeClient(service, self.calls)


class SessionMaker:
    """Stands in for ``clients._session``: held until released, or failing its first calls."""

    def __init__(self, hold: bool = False, failures: int = 0) -> None:
        self.session = FakeSession()
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.failures = failures
        self.calls = 0

    def __call__(self) -> FakeSession:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(BOUND_S), "the test never released the session"
        if self.calls <= self.failures:
            raise RuntimeError(f"cannot load the SDK (call {self.calls})")
        return self.session


def sqs_item(n: int) -> wire.SqsItem:
    return wire.SqsItem(f"q{n}", "r", 0, "https://sqs.us-east-1.amazonaws.com/1/q", "body")


def sns_item(n: int) -> wire.SnsItem:
    return wire.SnsItem(f"t{n}", "r", 0, "arn:aws:sns:us-east-1:1:t", "message")


#: An environment the lean transport serves (keys, a region, a local endpoint).
LEAN_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "HOME": "/nonexistent"}


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch):
    def make(maker: SessionMaker, *, in_init: bool = False, transport: str = "botocore"):
        monkeypatch.setattr(clients, "_session", maker)
        config = Config(transport=transport)
        factory = ClientFactory(config, environ=LEAN_ENV)
        sinks = make_sinks(factory)
        queue = PendingQueue()
        loader = SdkLoader(in_init=in_init)
        loader.bind(factory, sinks, queue)
        return loader, sinks, queue, Drainer(queue, sinks, TaskRunner(), config)

    return make


def test_after_init_the_loader_makes_only_the_clients_that_queued_items_need(engine) -> None:
    maker = SessionMaker()
    loader, sinks, queue, _ = engine(maker)
    queue.add(sqs_item(1))
    queue.add(sns_item(1))
    loader.start()
    loader.join(BOUND_S)
    assert sorted(maker.session.created) == ["sns", "sqs"]
    assert sinks["event"]._client is None  # made on first use, if an event is ever deferred


def test_in_init_the_loader_makes_every_client(engine) -> None:
    maker = SessionMaker()
    loader, _, _, _ = engine(maker, in_init=True)
    loader.start()
    loader.join(BOUND_S)
    assert sorted(maker.session.created) == ["events", "lambda", "sns", "sqs", "stepfunctions"]


def invoke_item(n: int) -> wire.InvokeItem:
    return wire.InvokeItem(f"i{n}", "r", 0, "fn", "{}")


def test_with_the_lean_transport_items_of_sqs_and_sns_never_load_botocore(engine) -> None:
    # GIVEN DEFER_TRANSPORT=auto in an environment the lean transport serves
    maker = SessionMaker()
    loader, sinks, queue, _ = engine(maker, transport="auto")
    queue.add(sqs_item(1))
    queue.add(sns_item(1))
    # WHEN the loader runs after init
    loader.start()
    loader.join(BOUND_S)
    # THEN the two clients are lean, and botocore's session was never made
    assert maker.calls == 0 and maker.session.created == []
    assert getattr(sinks["sqs"]._client, "lean", False) and getattr(sinks["sns"]._client, "lean", False)
    assert sinks["event"]._client is None


@pytest.mark.parametrize("in_init", [False, True])
def test_with_the_lean_transport_botocore_loads_for_the_kinds_that_need_it(engine, in_init: bool) -> None:
    maker = SessionMaker()
    loader, sinks, queue, _ = engine(maker, in_init=in_init, transport="auto")
    queue.add(invoke_item(1))  # a Lambda invoke: botocore's
    loader.start()
    loader.join(BOUND_S)
    assert maker.session.created == ["lambda"]
    lean = sorted(kind for kind, sink in sinks.items() if getattr(sink._client, "lean", False))
    assert lean == (["event", "sns", "sqs"] if in_init else [])  # in init: every lean client, cheap


def test_in_init_with_the_lean_transport_and_no_botocore_item_botocore_never_loads(engine) -> None:
    maker = SessionMaker()
    loader, sinks, _, _ = engine(maker, in_init=True, transport="auto")
    loader.start()
    loader.join(BOUND_S)
    assert maker.calls == 0
    assert sorted(kind for kind, sink in sinks.items() if sink._client is not None) == ["event", "sns", "sqs"]


def test_a_drain_waits_for_the_sdk_being_loaded_but_never_past_its_stop(engine) -> None:
    # GIVEN the SDK still loading (held) when the first drain needs a client
    maker = SessionMaker(hold=True)
    loader, _, queue, drainer = engine(maker)
    queue.add(sqs_item(1))
    loader.start()
    assert maker.entered.wait(BOUND_S)
    # WHEN the drain's time is up before the SDK is loaded
    started = time.monotonic()
    report = drainer.drain(started + 0.3)
    waited = time.monotonic() - started
    # THEN the drain waited for it until its stop, no longer, and the item is still in flight
    assert 0.3 <= waited < 0.3 + 1.0
    assert report.delivered == 0 and report.in_flight == 1
    assert maker.session.calls == []
    # AND once the SDK is loaded, the call goes out and the item is delivered
    maker.release.set()
    drainer.drain(time.monotonic() + BOUND_S)
    assert maker.session.calls == ["sqs:1"]
    assert len(queue) == 0
    assert maker.calls == 1  # the drain's send waited for the loader's session: one load


def test_an_sdk_that_cannot_be_loaded_is_a_retry_of_each_item_never_an_exception(engine, monkeypatch) -> None:
    # GIVEN an SDK whose loading fails twice (the loader's attempt, then the drain's first)
    escaped: List[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: escaped.append(args.exc_value))
    maker = SessionMaker(failures=2)
    loader, _, queue, drainer = engine(maker)
    queue.add(sqs_item(1))
    loader.start()
    loader.join(BOUND_S)
    assert maker.calls == 1 and escaped == []  # the loader logged it; nothing escaped its thread
    # WHEN the drain sends the item
    report = drainer.drain(time.monotonic() + BOUND_S)
    # THEN the failed load was that attempt's outcome (a transport error: retried, no attempt
    # used), and the next attempt, with the SDK loaded, delivered it
    assert report.retried == 1 and report.delivered == 1
    assert maker.calls == 3 and maker.session.calls == ["sqs:1"]
    assert escaped == []


def test_a_transport_error_is_what_a_failed_load_becomes() -> None:
    """The outcome code the retry above relies on: a load failure stalls, it never dead-letters."""
    from handler_lib.engine.sinks.base import describe_exception

    code, _, sender_fault = describe_exception(RuntimeError("cannot load the SDK"))
    assert code == TRANSPORT and not sender_fault


def test_a_new_invoke_tries_an_unreachable_endpoint_again_but_keeps_a_throttles_backoff() -> None:
    """Once the SDK loads after init, the first invoke has its whole window for retries, and an
    endpoint down for all of it leaves backoffs (up to 5 s) that a short next invoke would not
    outlast; ``probe_unreachable`` (called by the extension at each INVOKE) makes those due."""
    queue = PendingQueue()
    drainer = Drainer(queue, {}, TaskRunner(), Config())
    for n, code in enumerate((TRANSPORT, "ThrottlingException", TRANSPORT)):
        queue.add(sqs_item(n))
        queue.retry_later(f"q{n}", time.monotonic() + 60, code, "scripted", uses_attempt=False)
    assert len(queue.take_ready(time.monotonic() + 61, lambda e: e.item.id == "q2")) == 1  # now in flight
    assert drainer.probe_unreachable() == 1
    due = {e.item.id: e.not_before <= time.monotonic() for e in queue.snapshot()}
    assert due == {"q0": True, "q1": False, "q2": False}
    assert {e.item.id: e.stalls for e in queue.snapshot()} == {"q0": 1, "q1": 1, "q2": 1}  # backoff grows on
