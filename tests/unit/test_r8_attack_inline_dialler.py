"""DEFER_MODE=inline: the extension skips the wait for Telemetry ``platform.runtimeDone``
only while no process has dialled its socket. A process that dials all the same (its own
DEFER_MODE=extension) without ``@defer`` (a script, a subprocess of the handler: its hello
says it is not wrapped) sends items the extension can drain only once the runtime is done;
found: the runner checked ``wrapped_seen`` only, so it drained at once and called ``next``,
and that process's items waited for the next invoke (or SHUTDOWN) instead of this one's drain.

Real sockets: the extension's ChannelServer and a real function-side process dialling it.
The invoke in which a process dials for the first time is still drained at once: xfail below.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List

import pytest

from extension.channel import ChannelServer
from extension.listener import listen
from extension.runner import Runner, monotonic_deadline
from handler_lib.config import ENV_IN_RUNNER, Config
from handler_lib.engine.drain import Drainer
from handler_lib.engine.pending import PendingQueue
from handler_lib.engine.tasks import TaskRunner
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
CHILD = """
from handler_lib import defer
defer.sqs("https://sqs.us-east-1.amazonaws.com/123456789012/q", {"from": "a process that dials anyway"})
"""


def _wait(runner: Runner, request_id: str, seconds: float) -> str:
    return runner.wait_for_handler(request_id, monotonic_deadline(int((time.time() + seconds) * 1000), 0))


def test_inline_mode_waits_for_runtime_done_once_an_unwrapped_process_dialled(tmp_path):
    path = str(tmp_path / "defer.sock")
    config = Config(deadline_margin_ms=0, mode="inline", socket_path=path)
    queue = PendingQueue()
    channel = ChannelServer(path, listen(path))
    runner = Runner(config, queue, Drainer(queue, {}, TaskRunner(layer_roots=[]), config), channel)
    channel.start(runner.handlers())
    runner.telemetry_active = True
    try:
        assert _wait(runner, "r1", 5) == "inline"  # nobody dialled: nothing to wait for
        env = {**os.environ, "DEFER_MODE": "extension", "DEFER_SOCKET": path,
               "PYTHONPATH": str(REPO), "AWS_DEFAULT_REGION": "us-east-1"}
        env.pop(ENV_IN_RUNNER, None)
        child = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=30)
        assert child.returncode == 0, child.stderr
        wait_until(lambda: len(queue.snapshot()) == 1, 5, message="the dialler's item never arrived")
        # That process's items are in this invoke: its drain waits for the runtime to be done.
        assert _wait(runner, "r2", 0.5) == "deadline"
        runner.on_runtime_done("r3", "success")
        assert _wait(runner, "r3", 5) == "done"
    finally:
        channel.close()


@pytest.mark.xfail(strict=True, reason=(
    "DEFER_MODE=inline skips the runtimeDone wait until a process has dialled: the invoke in which "
    "a process dials for the first time is drained at once (before its hello), and that process's "
    "items wait for the next invoke's drain (or SHUTDOWN). Closing this means waiting for runtimeDone "
    "on every inline invoke while Telemetry is on, the 25 ms per invoke change 7 removed"))
def test_the_invoke_in_which_a_process_first_dials_waits_for_runtime_done(tmp_path):
    path = str(tmp_path / "defer.sock")
    config = Config(deadline_margin_ms=0, mode="inline", socket_path=path)
    queue = PendingQueue()
    channel = ChannelServer(path, listen(path))
    runner = Runner(config, queue, Drainer(queue, {}, TaskRunner(layer_roots=[]), config), channel)
    channel.start(runner.handlers())
    runner.telemetry_active = True
    env = {**os.environ, "DEFER_MODE": "extension", "DEFER_SOCKET": path,
           "PYTHONPATH": str(REPO), "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop(ENV_IN_RUNNER, None)
    outcome: List[str] = []
    try:
        # The invoke starts; its handler starts a process that dials while the runner waits.
        waiting = threading.Thread(target=lambda: outcome.append(_wait(runner, "r1", 10)))
        started = time.monotonic()
        waiting.start()
        child = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=30)
        assert child.returncode == 0, child.stderr
        wait_until(lambda: len(queue.snapshot()) == 1, 5, message="the dialler's item never arrived")
        runner.on_runtime_done("r1", "success")
        waiting.join(15)
        assert outcome == ["done"], outcome  # it drained after the runtime was done, the item in it
        assert time.monotonic() - started < 10
    finally:
        channel.close()
