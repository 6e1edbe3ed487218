"""Never a timeout on ``/event/next``: the extension waits there as long as the environment is
idle (frozen on Lambda; under RIE or SAM local, simply waiting). Found: the hand-written client
opened its connections with ``socket.create_connection(address)``, which takes the process's
*default* timeout, and the extension's process runs the function's task modules: one that calls
``socket.setdefaulttimeout(1)`` at import (as scripts and some libraries do) gave every later
connection to the Extensions API a 1 s timeout. ``http.client`` before was given ``timeout=None``.
With an API that closes its connections (``Connection: close``), the next ``next`` timed out
after a second of idleness, was retried, and after NEXT_RETRIES the extension exited outside
SHUTDOWN ("the Extensions API is gone").

Real processes: the layer's launcher (dist/layer, `make layer`) against a stub Extensions API
written here (Connection: close on every reply; it holds the second ``next`` as an idle
environment would, then answers SHUTDOWN); a function-side process defers a task whose module
sets the default timeout.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, List

import pytest

from bench.common import LAYER, PY, child_env, stop_process
from tests.support.waiting import wait_until

IDLE_S = 3.0  # how long the second next is held: three times the task's default timeout
TASKS = """
import socket

from handler_lib import defer

socket.setdefaulttimeout(1.0)  # module-level, as some code does


@defer.task
def touch(path):
    open(path, "w").close()
"""


class ClosingApi:
    """Register, Telemetry (202, not supported), and next: the first answered with an INVOKE
    once ``invoke`` is set, every later one held IDLE_S and then answered SHUTDOWN."""

    def __init__(self) -> None:
        self.invoke = threading.Event()
        self.nexts: List[float] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, extra: str = "") -> None:
                self.wfile.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
                                 f"{extra}\r\n".encode() + body)
                self.close_connection = True

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps({"functionName": "f", "functionVersion": "$LATEST", "handler": "app.h"}).encode()
                self._reply(200, body, f"Lambda-Extension-Identifier: {uuid.uuid4()}\r\n")

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._reply(202, b'{"errorType":"Telemetry.NotSupported"}')

            def do_GET(self) -> None:
                stub.nexts.append(time.monotonic())
                if len(stub.nexts) == 1:
                    stub.invoke.wait(30)
                    event = {"eventType": "INVOKE", "requestId": "r1", "deadlineMs": int((time.time() + 10) * 1000)}
                else:
                    time.sleep(IDLE_S)  # an idle environment: the platform answers when it has an event
                    event = {"eventType": "SHUTDOWN", "shutdownReason": "spindown",
                             "deadlineMs": int((time.time() + 2) * 1000)}
                try:
                    self._reply(200, json.dumps(event).encode())
                except OSError:
                    pass  # the extension gave up on this call

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.skipif(not (LAYER / "extensions" / "defer-runner").exists(), reason="run `make layer` first")
def test_a_task_module_setting_the_default_socket_timeout_puts_none_on_next(tmp_path):
    task_root = tmp_path / "task"
    task_root.mkdir()
    (task_root / "mytasks.py").write_text(TASKS)
    api = ClosingApi()
    sock_path = tempfile.mktemp(prefix="defer-r8-", suffix=".sock", dir="/tmp")
    log_path = tmp_path / "extension.log"
    env = child_env({"AWS_LAMBDA_RUNTIME_API": api.address, "DEFER_SOCKET": sock_path,
                     "DEFER_JOURNAL_DIR": str(tmp_path / "journal"), "DEFER_RUNNER_PYTHON": PY,
                     "AWS_LAMBDA_FUNCTION_NAME": "f", "LAMBDA_TASK_ROOT": str(task_root)})
    out = tmp_path / "touched"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([str(LAYER / "extensions" / "defer-runner")], env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: (os.path.exists(sock_path) and api.nexts) or proc.poll() is not None, 20,
                   message=lambda: log_path.read_text())
        assert proc.poll() is None, log_path.read_text()
        function = child_env({"DEFER_SOCKET": sock_path, "DEFER_MODE": "extension",
                              "PYTHONPATH": f"{LAYER / 'python'}{os.pathsep}{task_root}"})
        sent = subprocess.run([sys.executable, "-c", f"import mytasks; mytasks.touch.defer({str(out)!r})"],
                              env=function, capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        api.invoke.set()
        code = proc.wait(30)
        assert out.exists(), log_path.read_text()  # the task ran (its module set the default)
        assert code == 0, log_path.read_text()  # it left at SHUTDOWN, not as "the API is gone"
        assert len(api.nexts) == 2, log_path.read_text()  # one wait for the idle time, no retries
    finally:
        stop_process(proc, timeout=3)
        api.close()
        if os.path.exists(sock_path):
            os.unlink(sock_path)
