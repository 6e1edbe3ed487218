"""Telemetry API listener: ``platform.runtimeDone`` says the runtime finished an invoke.

Used to know when to drain for a handler not wrapped by ``@defer`` (which sends no
end-of-invoke marker). Where the platform does not deliver telemetry (AWS's emulator
answers 202 ``Telemetry.NotSupported``) the runner simply does without it.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

log = logging.getLogger("defer_runner.telemetry")

DEFAULT_PORT = 4323
RUNTIME_DONE = "platform.runtimeDone"


def _bind_host() -> str:
    try:
        return socket.gethostbyname("sandbox.localdomain")
    except OSError:
        return "127.0.0.1"


class TelemetryListener:
    def __init__(self, on_runtime_done: Callable[[str, str], None]) -> None:
        self._on_runtime_done = on_runtime_done
        self._server: Optional[ThreadingHTTPServer] = None

    def start(self, port: int = DEFAULT_PORT) -> int:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length)
                self.send_response(200)
                self.end_headers()
                listener.handle_batch(payload)

            def log_message(self, *args: object) -> None:  # keep our own stdout quiet
                pass

        host = _bind_host()
        try:
            server = ThreadingHTTPServer((host, port), Handler)
        except OSError:
            server = ThreadingHTTPServer((host, 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="defer-telemetry", daemon=True).start()
        return server.server_address[1]

    def handle_batch(self, payload: bytes) -> None:
        try:
            events = json.loads(payload)
        except ValueError:
            log.warning("telemetry batch is not JSON")
            return
        for event in events if isinstance(events, list) else []:
            if isinstance(event, dict) and event.get("type") == RUNTIME_DONE:
                record = event.get("record") or {}
                self._on_runtime_done(str(record.get("requestId", "")), str(record.get("status", "")))

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
