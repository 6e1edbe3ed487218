"""A tiny Extensions API (2020-01-01) to run the real defer-runner extension outside a sandbox.

It records when ``register`` arrived and when each ``next`` was called, and hands out the
events we push (INVOKE / SHUTDOWN). The Telemetry API answers 202 like RIE (not supported),
so the extension relies on end-of-invoke markers, as under SAM local.

``RealExtension`` launches ``dist/layer/extensions/defer-runner`` (the shipped launcher and
bootstrap) against it.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional

from .common import LAYER, PY, child_env, stop_process


class ExtensionsApiStub:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.register_at: List[float] = []   # time.monotonic() when register arrived
        self.next_at: List[float] = []       # time.monotonic() when each next arrived
        self._events: Deque[Dict[str, Any]] = deque()
        self._closing = False
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"", headers: Optional[Dict[str, str]] = None) -> None:
                head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Content-Type: application/json"]
                head += [f"{k}: {v}" for k, v in (headers or {}).items()]
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)  # one write

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path.endswith("/extension/register"):
                    with stub.cond:
                        stub.register_at.append(time.monotonic())
                        stub.cond.notify_all()
                    body = json.dumps({"functionName": "bench", "functionVersion": "$LATEST",
                                       "handler": "app.handler"}).encode()
                    self._reply(200, body, {"Lambda-Extension-Identifier": str(uuid.uuid4())})
                else:  # init/error, exit/error
                    self._reply(202, b"{}")

            def do_PUT(self) -> None:  # Telemetry API: not supported, as under RIE
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._reply(202, b'{"errorType":"Telemetry.NotSupported"}')

            def do_GET(self) -> None:
                with stub.cond:
                    stub.next_at.append(time.monotonic())
                    stub.cond.notify_all()
                    while not stub._events and not stub._closing:
                        stub.cond.wait(0.5)
                    if not stub._events:
                        return
                    event = stub._events.popleft()
                self._reply(200, json.dumps(event).encode())

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def push_invoke(self, request_id: str, timeout_s: float = 30.0) -> None:
        self._push({"eventType": "INVOKE", "requestId": request_id,
                    "deadlineMs": int((time.time() + timeout_s) * 1000),
                    "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:bench"})

    def push_shutdown(self, budget_s: float = 2.0) -> None:
        self._push({"eventType": "SHUTDOWN", "shutdownReason": "spindown",
                    "deadlineMs": int((time.time() + budget_s) * 1000)})

    def _push(self, event: Dict[str, Any]) -> None:
        with self.cond:
            self._events.append(event)
            self.cond.notify_all()

    def wait_next_calls(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.next_at) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def close(self) -> None:
        with self.cond:
            self._closing = True
            self.cond.notify_all()
        self._server.shutdown()
        self._server.server_close()


class RealExtension:
    """The layer's defer-runner, launched by its own launcher, against an ExtensionsApiStub."""

    def __init__(self, env: Optional[Dict[str, str]] = None, layer: Path = LAYER) -> None:
        self.tmp = tempfile.mkdtemp(prefix="defer-bench-")
        self.socket_path = os.path.join(self.tmp, "defer.sock")
        self.stub = ExtensionsApiStub()
        self.env = child_env({
            "AWS_LAMBDA_RUNTIME_API": self.stub.address,
            "DEFER_SOCKET": self.socket_path,
            "DEFER_JOURNAL_DIR": os.path.join(self.tmp, "journal"),
            "DEFER_RUNNER_PYTHON": PY,
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            **(env or {}),
        })
        self.launcher = str(layer / "extensions" / "defer-runner")
        self.proc: Optional[subprocess.Popen] = None
        self.popen_at = 0.0
        self.log_path = os.path.join(self.tmp, "extension.log")

    def start(self, ready_timeout: float = 20.0) -> "RealExtension":
        log = open(self.log_path, "ab")
        self.popen_at = time.monotonic()
        self.proc = subprocess.Popen([self.launcher], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        if not self.stub.wait_next_calls(1, ready_timeout):
            raise RuntimeError(f"defer-runner did not call next within {ready_timeout}s: {self.log()}")
        return self

    @property
    def register_ms(self) -> float:
        return (self.stub.register_at[0] - self.popen_at) * 1000

    @property
    def ready_ms(self) -> float:
        return (self.stub.next_at[0] - self.popen_at) * 1000

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc, timeout=3)
        self.stub.close()
