"""The deadline margin's cap × the function's bounded waits on the extension.

On Lambda the margin is capped per invoke (at least 1 s, or half the invoke, is left for
delivery): the extension's drain and the function's inline delivery use the capped margin.
The function's waits on the extension (the hello's answer, a send into a full buffer) end at
the invoke's deadline less the margin too; they must use the same capped margin, or a margin
at or above the invoke's time gives them no time at all: the first send of a new connection
gives up at once, the channel counts as stalled, and everything goes inline for 5 s.

The "extension" is the real channel reader in a process of its own (tests/support/channel_host),
stopped with SIGSTOP for 100 ms so its answer to the hello takes that long (well inside the
1 s the function waits for it).
"""
from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from types import SimpleNamespace
from typing import Iterator, List

import pytest

from handler_lib import defer, wire
from handler_lib._dispatch import DISPATCHER, Dispatcher
from tests.support import channel_host
from tests.support.processes import process_state
from tests.support.waiting import wait_until


@pytest.fixture
def reader(tmp_path, monkeypatch) -> Iterator[str]:
    sock = str(tmp_path / "defer.sock")
    proc = channel_host.spawn(sock)
    monkeypatch.setenv("DEFER_SOCKET", sock)
    monkeypatch.setenv("DEFER_ACK_TIMEOUT_MS", "2000")
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_TIMEOUT", raising=False)  # as on Lambda: known per invoke only
    DISPATCHER.reset()
    yield str(proc.pid)
    DISPATCHER.reset()
    proc.kill()
    proc.wait()


def _slow_answer(pid: int, hold_s: float) -> threading.Timer:
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: process_state(pid) == "T", 5,
               message="the reader did not stop")
    timer = threading.Timer(hold_s, os.kill, (pid, signal.SIGCONT))
    timer.start()
    return timer


@pytest.mark.parametrize("margin_ms", ["300", "5000"])
def test_a_capped_margin_still_leaves_the_function_its_wait_for_the_hello(reader, monkeypatch, margin_ms):
    # GIVEN a 3 s invoke (the Lambda default timeout) and a margin that is capped in it (5000)
    # or not (300); a handler defined before the extension answered anything
    monkeypatch.setenv("DEFER_DEADLINE_MARGIN_MS", margin_ms)
    inline: List[wire.WorkItem] = []
    monkeypatch.setattr(Dispatcher, "_deliver_inline", staticmethod(lambda items, clock=None: inline.extend(items) or []))
    start = time.monotonic()
    context = SimpleNamespace(aws_request_id="r-1",
                              get_remaining_time_in_millis=lambda: int(3000 - (time.monotonic() - start) * 1000))

    # WHEN the reader takes 100 ms to answer the hello (busy, a CPU-starved extension)
    resumed = _slow_answer(int(reader), 0.1)

    @defer  # dials the extension: the hello is sent, its answer awaited by the first send
    def handler(event, context):
        defer.sqs("https://sqs.us-east-1.amazonaws.com/000000000000/q", {"n": 1})
        return "ok"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert handler({}, context) == "ok"
    resumed.join()
    # THEN the function waited for it (its bound is 1 s): the item went to the extension,
    # which confirmed it; nothing went inline
    assert [str(w.message) for w in caught] == []
    assert inline == []
