"""A stopped extension (SIGSTOP) does not hold the handler in ``sendall`` past its deadline:
a send that makes no progress is given up after a bounded wait, and the items go inline
(none lost).

The "extension" is the real channel reader in a process of its own (tests/support/channel_host);
the function runs with the real runtime in the sandbox (the built layer without its extension),
against moto.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from lambda_sandbox import Sandbox
from tests.support import channel_host
from tests.support.moto_server import drain_queue
from tests.support.processes import process_state
from tests.support.waiting import wait_until

FUNCTION_DIR = Path(__file__).parent / "functions" / "faults"


@pytest.fixture
def layer_without_extension(built_layer, tmp_path):
    layer = tmp_path / "layer"
    (layer / "extensions").mkdir(parents=True)
    for part in ("python", "defer-runner"):
        (layer / part).symlink_to(built_layer / part)
    return layer


def test_a_send_into_a_stopped_extension_is_bounded_and_its_items_go_inline(
        layer_without_extension, tmp_path, aws_resources):
    sock = str(tmp_path / "defer.sock")
    reader = channel_host.spawn(sock)
    res = aws_resources()
    env = {**res.env(), "DEFER_SOCKET": sock, "DEFER_ACK_TIMEOUT_MS": "300"}
    box = Sandbox(layer_without_extension, FUNCTION_DIR, "app.handler", timeout_s=20, env=env, echo=False).start()
    try:
        # GIVEN a connection the reader accepted and confirmed (a first invoke), then a reader that stops
        assert box.invoke({"tag": "warm", "sqs": 1}).status == 200
        os.kill(reader.pid, signal.SIGSTOP)
        wait_until(lambda: process_state(reader.pid) == "T", 5,
                   message="the reader did not stop")
        # WHEN the handler defers 10 MB: more than the socket's buffer holds (at most twice
        # net.core.wmem_max, 4 MiB here; Lambda's default is 208 KiB)
        result = box.invoke({"tag": "stalled", "big": 100}, timeout=60)
        # THEN it answered within its deadline, and delivered every item itself
        assert result.status == 200 and result.function_error is None, result.body
        got = [b["n"] for b in drain_queue(res.queue_url, 100, timeout=10) if b.get("tag") == "stalled"]
        assert sorted(got) == list(range(100))
    finally:
        box.stop()
        reader.kill()
        reader.wait()
