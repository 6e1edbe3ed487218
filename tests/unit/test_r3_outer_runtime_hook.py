"""Every invoke of a @defer process ends, exactly when the runtime can say so, else at once.

- ``_runtime_hook`` wraps awslambdaric's posts only when its runtime client is loaded and of
  the expected shape; it never breaks the runtime's loop.
- The per-invoke driver waits for the end marker of a process that reports every invoke
  (its hello says ``posts``); for @defer processes that cannot, with neither Telemetry nor
  the proxy, it drains at once instead of waiting to the deadline.
"""

from __future__ import annotations

import sys
import time
import types
from typing import List

import pytest

from extension.lambda_api import InvokeEvent
from extension.memory_channel import MemoryChannel
from extension.runner import Runner, monotonic_deadline
from handler_lib import _runtime_hook, wire
from handler_lib.config import Config
from handler_lib.engine.drain import Drainer
from handler_lib.engine.pending import PendingQueue
from handler_lib.engine.tasks import TaskRunner


def _fake_runtime_module(monkeypatch, body: str) -> types.ModuleType:
    module = types.ModuleType(_runtime_hook.RUNTIME_CLIENT_MODULE)
    exec(compile(body, "<runtime client>", "exec"), module.__dict__)
    for value in vars(module).values():
        if isinstance(value, type):
            value.__module__ = module.__name__
    monkeypatch.setitem(sys.modules, _runtime_hook.RUNTIME_CLIENT_MODULE, module)
    return module


AS_EXPECTED = """
class BaseLambdaRuntimeClient:
    def __init__(self):
        self.posts = []
    def post_invocation_result(self, invoke_id, result_data, content_type="application/json", invocation_id=None):
        self.posts.append(("result", invoke_id))
        if result_data == "fail":
            raise ConnectionError("the Runtime API is gone")
    def post_invocation_error(self, invoke_id, error_response_data, xray_fault, invocation_id=None):
        self.posts.append(("error", invoke_id))

class LambdaRuntimeClient(BaseLambdaRuntimeClient):
    pass
"""


def test_the_posts_are_wrapped_once_and_report_after_the_post(monkeypatch):
    module = _fake_runtime_module(monkeypatch, AS_EXPECTED)
    told: List[str] = []
    client = module.LambdaRuntimeClient()
    assert _runtime_hook.install(lambda rid: told.append(rid) or client.posts.append(("told", rid)))
    assert _runtime_hook.install(told.append)  # already wrapped: not wrapped twice
    client.post_invocation_result("r1", b"{}")
    client.post_invocation_error(invoke_id="r2", error_response_data="{}", xray_fault="{}")
    assert client.posts == [("result", "r1"), ("told", "r1"), ("error", "r2"), ("told", "r2")]
    with pytest.raises(ConnectionError):  # the runtime's own failure is its own, and still reported
        client.post_invocation_result("r3", "fail")
    assert told == ["r1", "r2", "r3"]


def test_a_failing_report_never_reaches_the_runtime(monkeypatch):
    module = _fake_runtime_module(monkeypatch, AS_EXPECTED)

    def broken(request_id: str) -> None:
        raise RuntimeError("socket gone")

    assert _runtime_hook.install(broken)
    client = module.LambdaRuntimeClient()
    client.post_invocation_result("r1", b"{}")
    assert client.posts == [("result", "r1")]


@pytest.mark.parametrize("body", [
    # the request id is not the first argument
    AS_EXPECTED.replace("post_invocation_result(self, invoke_id, result_data",
                        "post_invocation_result(self, result_data, invoke_id"),
    # one of the two posts is missing
    "class LambdaRuntimeClient:\n    def post_invocation_result(self, invoke_id, data):\n        pass\n",
    # not a plain function
    "class LambdaRuntimeClient:\n    post_invocation_result = staticmethod(print)\n"
    "    def post_invocation_error(self, invoke_id, data, fault):\n        pass\n",
])
def test_a_runtime_of_another_shape_is_left_alone(monkeypatch, body):
    module = _fake_runtime_module(monkeypatch, body)
    before = {name: dict(vars(cls)) for name, cls in vars(module).items() if isinstance(cls, type)}
    assert not _runtime_hook.install(lambda rid: None)
    assert {name: dict(vars(cls)) for name, cls in vars(module).items() if isinstance(cls, type)} == before


def test_without_awslambdaric_loaded_nothing_is_imported_or_wrapped(monkeypatch):
    monkeypatch.delitem(sys.modules, _runtime_hook.RUNTIME_CLIENT_MODULE, raising=False)
    assert not _runtime_hook.install(lambda rid: None)
    assert _runtime_hook.RUNTIME_CLIENT_MODULE not in sys.modules


# -- the driver's side --------------------------------------------------------------------

def make() -> tuple:
    config = Config(deadline_margin_ms=0)
    queue = PendingQueue()
    drainer = Drainer(queue, {}, TaskRunner(layer_roots=[]), config)
    channel = MemoryChannel()
    runner = Runner(config, queue, drainer, channel)
    channel.start(runner.handlers())
    return channel, runner


def wait(runner: Runner, request_id: str, seconds: float) -> str:
    return runner.wait_for_handler(request_id, monotonic_deadline(int((time.time() + seconds) * 1000), 0))


def test_a_process_that_reports_every_invoke_is_waited_for(caplog):
    channel, runner = make()
    peer = channel.connect(posts=True)
    assert wait(runner, "r1", 0.3) == "deadline"  # its marker would come: the runner waits for it
    channel.send(peer, wire.EndOfInvoke("r2", 0, 0, 0))
    assert wait(runner, "r2", 30) == "done"


def test_a_defer_process_that_cannot_report_every_invoke_is_drained_at_once(caplog):
    channel, runner = make()
    peer = channel.connect(posts=False)  # an older handler_lib, or a runtime other than awslambdaric
    started = time.monotonic()
    assert wait(runner, "r1", 30) == "unreported"
    assert wait(runner, "r2", 30) == "unreported"
    assert time.monotonic() - started < 15  # not the deadline
    assert sum("does not report when it posts" in r.getMessage() for r in caplog.records) == 1  # said once
    channel.send(peer, wire.EndOfInvoke("r3", 0, 0, 0))
    assert wait(runner, "r3", 30) == "done"  # a marker that came is still the exact end


def test_a_hello_saying_posts_later_makes_the_runner_wait_and_closing_undoes_it():
    channel, runner = make()
    peer = channel.connect(posts=False)
    channel.send(peer, wire.Hello(pid=1, wrapped=True, posts=True))  # @defer defined after a first item
    assert wait(runner, "r1", 0.3) == "deadline"
    other = channel.connect(posts=False)
    assert wait(runner, "r2", 0.3) == "deadline"  # one process reports every invoke: wait for it
    channel.close(peer)
    assert wait(runner, "r3", 30) == "unreported"
    channel.close(other)
    assert wait(runner, "r4", 30) == "closed"


def test_with_telemetry_or_the_proxy_a_process_that_cannot_report_is_still_waited_for():
    for flag in ("telemetry_active", "proxy_active"):
        channel, runner = make()
        channel.connect(posts=False)
        setattr(runner, flag, True)
        assert wait(runner, "r1", 0.3) == "deadline"
        runner.on_runtime_done("r2", "success")
        assert wait(runner, "r2", 30) == "done"


def test_the_hello_carries_posts_and_an_older_hello_reads_as_not_reporting():
    hello = wire.Hello(pid=7, wrapped=True, posts=True)
    assert wire.decode(wire.encode(hello)[wire.HEADER.size:]) == hello
    older = wire.pack_map({"v": wire.PROTOCOL_VERSION, "k": "hello", "pid": 7, "wrapped": True})
    assert wire.decode(older) == wire.Hello(pid=7, wrapped=True, posts=False)


def test_in_inline_mode_the_runner_does_not_wait_for_runtime_done_unless_a_process_dials():
    config = Config(deadline_margin_ms=0, mode="inline")
    queue = PendingQueue()
    channel = MemoryChannel()
    runner = Runner(config, queue, Drainer(queue, {}, TaskRunner(layer_roots=[]), config), channel)
    channel.start(runner.handlers())
    runner.telemetry_active = True
    started = time.monotonic()
    assert wait(runner, "r1", 30) == "inline"  # no runtimeDone came, and none is waited for
    assert time.monotonic() - started < 15
    peer = channel.connect(posts=True)  # a process that dials all the same (its own DEFER_MODE)
    assert wait(runner, "r2", 0.3) == "deadline"
    channel.send(peer, wire.EndOfInvoke("r3", 0, 0, 0))
    assert wait(runner, "r3", 30) == "done"
