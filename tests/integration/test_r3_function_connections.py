"""Frames outside an invoke are never lost silently.

- A connection is usable only once the reader said so (it answers the hello): past the
  reader's connection cap, ``connect()`` and the first ``sendall()`` succeed before the reader
  closes the connection, so a process that sent at once lost what it sent.
- Loose items (sent outside any invoke) are tracked from the start of the process, before any
  ``@defer`` handler exists too.
- An item whose invoke ended before it was filed is loose (it was counted as neither).

The "extension" is the real channel reader in a process of its own (tests/support/channel_host);
the queue is moto's; the processes that defer are real ones (a script, a forked child).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import warnings
from types import SimpleNamespace
from typing import Any, Iterator, List

import pytest

from handler_lib import defer
from handler_lib._dispatch import DISPATCHER
from tests.support import channel_host
from tests.support.moto_server import drain_queue
from tests.support.rie import REPO_ROOT
from tests.support.processes import process_state
from tests.support.waiting import wait_until


@pytest.fixture
def capped_reader(tmp_path, monkeypatch) -> Iterator[subprocess.Popen]:
    """A reader that keeps one connection, and this test process's @defer handler holding it."""
    sock = str(tmp_path / "defer.sock")
    proc = channel_host.spawn(sock, "--max-connections", "1")
    monkeypatch.setenv("DEFER_SOCKET", sock)
    monkeypatch.setenv("DEFER_ACK_TIMEOUT_MS", "2000")
    DISPATCHER.reset()
    yield proc
    DISPATCHER.reset()
    proc.kill()
    proc.wait()


def _hold_the_only_connection() -> None:
    @defer
    def handler(event, context):
        return "ok"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the end marker was acked: the reader keeps this connection
        handler({}, SimpleNamespace(aws_request_id="holder"))


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], cwd=REPO_ROOT,
                         env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out


def _stop(pid: int) -> None:
    """SIGSTOP, and wait until it took effect (it does so asynchronously)."""
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: process_state(pid) == "T", 5,
               message="the reader did not stop")


def _ns(queue_url: str, count: int) -> List[Any]:
    return [b.get("n") for b in drain_queue(queue_url, count, timeout=5)]


STOPPED = """
    import time

    def stopped(pid):  # SIGSTOP takes effect asynchronously
        give_up = time.monotonic() + 5
        while open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "T":
            assert time.monotonic() < give_up, "the reader did not stop"
            time.sleep(0.001)
"""

UNWRAPPED = """
    import sys
    from handler_lib import defer
    for n in range(3):  # no @defer in this process: nothing ever confirms these
        defer.sqs(sys.argv[1], {"n": n})
"""


def test_a_process_without_defer_past_the_connection_cap_loses_nothing(capped_reader, aws_resources):
    res = aws_resources()
    _hold_the_only_connection()
    # WHEN a process without @defer defers three items while the reader is at its cap
    _run(UNWRAPPED, res.queue_url)
    # THEN it delivered them itself: the reader closed its connection without reading them
    assert sorted(_ns(res.queue_url, 3)) == [0, 1, 2]


FORKED = STOPPED + """
    import os, signal, sys, threading
    from types import SimpleNamespace
    from handler_lib import defer

    @defer
    def handler(event, context):
        return "ok"

    handler({}, SimpleNamespace(aws_request_id="parent"))  # the parent holds the reader's only connection
    reader = int(sys.argv[2])
    os.kill(reader, signal.SIGSTOP)  # busy for a moment: it accepts (and refuses) the child's connection late
    stopped(reader)
    pid = os.fork()
    if pid == 0:
        resume = threading.Timer(0.2, os.kill, (reader, signal.SIGCONT))
        resume.start()
        for n in range(3):
            defer.sqs(sys.argv[1], {"n": n})
        resume.join()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_past_the_connection_cap_loses_nothing(tmp_path, aws_resources, monkeypatch):
    sock = str(tmp_path / "defer.sock")
    reader = channel_host.spawn(sock, "--max-connections", "1")
    monkeypatch.setenv("DEFER_SOCKET", sock)
    res = aws_resources()
    try:
        _run(FORKED, res.queue_url, str(reader.pid))
        assert sorted(_ns(res.queue_url, 3)) == [0, 1, 2]
    finally:
        reader.kill()
        reader.wait()


AT_IMPORT = STOPPED + """
    import os, signal, sys
    from types import SimpleNamespace
    from handler_lib import defer

    defer.sqs(sys.argv[1], {"n": "import"})  # at import, before any @defer handler exists
    os.kill(int(sys.argv[2]), signal.SIGSTOP)  # the extension hangs: nothing more is read
    stopped(int(sys.argv[2]))

    @defer
    def handler(event, context):
        defer.sqs(sys.argv[1], {"n": "invoke"})
        return "ok"

    handler({}, SimpleNamespace(aws_request_id="first"))
"""


def test_an_item_deferred_at_import_before_any_defer_handler_is_confirmed_by_the_first_invoke(
        tmp_path, aws_resources, monkeypatch):
    sock = str(tmp_path / "defer.sock")
    reader = channel_host.spawn(sock)
    monkeypatch.setenv("DEFER_SOCKET", sock)
    monkeypatch.setenv("DEFER_ACK_TIMEOUT_MS", "300")
    res = aws_resources()
    try:
        out = _run(AT_IMPORT, res.queue_url, str(reader.pid))
        # THEN the first invoke found neither item confirmed, and delivered both itself
        assert sorted(_ns(res.queue_url, 2)) == ["import", "invoke"], out.stderr
    finally:
        reader.kill()
        reader.wait()


AT_IMPORT_CONFIRMED = """
    import sys, warnings
    from types import SimpleNamespace
    from handler_lib import defer

    defer.sqs(sys.argv[1], {"n": "import"})  # at import, before any @defer handler exists

    @defer
    def handler(event, context):
        return "ok"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a delivery from the function would warn
        handler({}, SimpleNamespace(aws_request_id="first"))
"""


def test_an_item_deferred_at_import_that_the_extension_holds_is_confirmed_not_delivered_twice(
        tmp_path, aws_resources, monkeypatch):
    sock = str(tmp_path / "defer.sock")
    reader = channel_host.spawn(sock)
    monkeypatch.setenv("DEFER_SOCKET", sock)
    res = aws_resources()
    try:
        _run(AT_IMPORT_CONFIRMED, res.queue_url)
        assert drain_queue(res.queue_url, 1, timeout=0.5) == []  # the reader holds it: none from the function
    finally:
        reader.kill()
        reader.wait()


class Slow:
    """Encoded by a json_default that waits: the item is built with its invoke's request id,
    and handed over only after that invoke ended."""

    def __init__(self, gate: threading.Event, building: threading.Event) -> None:
        self.gate, self.building = gate, building


@pytest.mark.parametrize("hangs", [True, False])
def test_an_item_whose_invoke_ended_before_it_was_sent_is_loose(hangs, tmp_path, aws_resources, monkeypatch):
    sock = str(tmp_path / "defer.sock")
    reader = channel_host.spawn(sock)
    monkeypatch.setenv("DEFER_SOCKET", sock)
    monkeypatch.setenv("DEFER_ACK_TIMEOUT_MS", "300")
    DISPATCHER.reset()
    res = aws_resources()
    gate, building, done = threading.Event(), threading.Event(), threading.Event()

    def encode(value: Any) -> Any:
        if isinstance(value, Slow):
            value.building.set()
            value.gate.wait(5)
            return "slow"
        raise TypeError(type(value).__name__)

    defer.json_default = encode

    @defer
    def handler(event, context):
        if event.get("spawn"):
            def racing() -> None:  # reads the invoke's request id, then is held while it ends
                defer.sqs(res.queue_url, {"n": "racing", "v": Slow(gate, building)})
                done.set()
            threading.Thread(target=racing, daemon=True).start()
            assert building.wait(5)
        return "ok"

    try:
        assert handler({"spawn": True}, SimpleNamespace(aws_request_id="first")) == "ok"
        if hangs:
            _stop(reader.pid)  # the extension hangs: the racing item is never read
        gate.set()
        assert done.wait(5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if hangs else "error", RuntimeWarning)  # "no confirmation"
            handler({}, SimpleNamespace(aws_request_id="second"))
        if hangs:  # THEN the next invoke found it unconfirmed and delivered it
            assert _ns(res.queue_url, 1) == ["racing"]
        else:  # THEN the next invoke's confirmation counted it (the reader holds it): no duplicate
            assert drain_queue(res.queue_url, 1, timeout=0.5) == []
    finally:
        defer.json_default = None
        DISPATCHER.reset()
        reader.kill()
        reader.wait()
