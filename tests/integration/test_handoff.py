"""The hand-off is confirmed: at the end of an invoke the handler learns which of its items
the extension holds, and delivers the others itself (late, not lost).

The "extension" here is the real channel reader in a process of its own, stopped with
SIGSTOP so that frames sit unread in its socket, as they do when an extension hangs or
dies; the function runs with the real runtime in the sandbox, against moto.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from lambda_sandbox import Sandbox
from tests.support import channel_host
from tests.support.moto_server import drain_queue

FUNCTION_DIR = Path(__file__).parent / "functions" / "faults"


@pytest.fixture
def layer_without_extension(built_layer, tmp_path):
    """The built layer's python/ and defer-runner/ (inline delivery), without its extension."""
    layer = tmp_path / "layer"
    (layer / "extensions").mkdir(parents=True)
    for part in ("python", "defer-runner"):
        (layer / part).symlink_to(built_layer / part)
    return layer


@pytest.fixture
def stopped_reader(tmp_path):
    sock = str(tmp_path / "defer.sock")
    proc = channel_host.spawn(sock)
    os.kill(proc.pid, signal.SIGSTOP)
    yield sock, proc
    proc.kill()
    proc.wait()


def test_items_unread_by_a_stopped_extension_are_delivered_by_the_handler(
        layer_without_extension, stopped_reader, aws_resources):
    sock, reader = stopped_reader
    res = aws_resources()
    env = {**res.env(), "DEFER_SOCKET": sock, "DEFER_ACK_TIMEOUT_MS": "300"}
    box = Sandbox(layer_without_extension, FUNCTION_DIR, "app.handler", timeout_s=10, env=env, echo=False).start()
    try:
        result = box.invoke({"tag": "unread", "sqs": 20})
        assert result.status == 200, result.body
        got = sorted(b["n"] for b in drain_queue(res.queue_url, 20, timeout=5) if b.get("tag") == "unread")
        assert got == list(range(20))  # every one, although the extension read none of them
        assert any("no confirmation from the extension" in line.text for line in box.logs)
    finally:
        box.stop()


def test_items_sent_before_the_extension_died_mid_invoke_are_delivered_by_the_handler(
        tmp_path, aws_resources, monkeypatch):
    """The extension is killed between two deferrals: what it had read is gone with it."""
    from types import SimpleNamespace

    from handler_lib import defer
    from handler_lib._dispatch import DISPATCHER

    res = aws_resources()
    sock = str(tmp_path / "defer.sock")
    reader = channel_host.spawn(sock)
    monkeypatch.setenv("DEFER_SOCKET", sock)
    DISPATCHER.reset()

    @defer
    def handler(event, context):
        for n in range(5):
            defer.sqs(res.queue_url, {"n": n})
        reader.kill()
        reader.wait()
        for n in range(5, 10):
            defer.sqs(res.queue_url, {"n": n})
        return "ok"

    try:
        with pytest.warns(RuntimeWarning):
            assert handler({}, SimpleNamespace(aws_request_id="died")) == "ok"
        got = sorted(b["n"] for b in drain_queue(res.queue_url, 10, timeout=5))
        assert got == list(range(10))  # the first five were read by the dead extension
    finally:
        DISPATCHER.reset()


def test_warnings_made_errors_lose_nothing(stopped_reader, aws_resources, monkeypatch):
    """With warnings turned into errors (PYTHONWARNINGS=error), the warning about unconfirmed
    items is raised only after the function delivered them."""
    import warnings
    from types import SimpleNamespace

    from handler_lib import defer
    from handler_lib._dispatch import DISPATCHER

    sock, _ = stopped_reader
    res = aws_resources()
    monkeypatch.setenv("DEFER_SOCKET", sock)
    monkeypatch.setenv("DEFER_ACK_TIMEOUT_MS", "200")
    DISPATCHER.reset()

    @defer
    def handler(event, context):
        for n in range(3):
            defer.sqs(res.queue_url, {"n": n})
        return "ok"

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(RuntimeWarning, match="no confirmation"):
                handler({}, SimpleNamespace(aws_request_id="strict"))
        assert sorted(b["n"] for b in drain_queue(res.queue_url, 3, timeout=5)) == [0, 1, 2]
    finally:
        DISPATCHER.reset()
