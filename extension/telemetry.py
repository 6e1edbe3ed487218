"""Telemetry API listener: ``platform.runtimeDone`` says the runtime finished an invoke.

Used to know when to drain for a handler not wrapped by ``@defer`` (which sends no
end-of-invoke marker). Where the platform does not deliver telemetry (AWS's emulator
answers 202 ``Telemetry.NotSupported``) the runner simply does without it.

The listener speaks just enough HTTP/1.1 for the one client it has (the platform POSTs JSON
arrays, keep-alive, Content-Length or chunked) on a plain socket, with ``http11``'s reader:
``http.server`` and what it imports (``http.client``, ``email``, ``ssl``) cost 12 ms of CPU
before the extension could say it is ready, a fifth of its start (bench ``--only startup``).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from typing import Callable, Dict, Optional, Tuple

from .http11 import MalformedMessage, Reader

log = logging.getLogger("defer_runner.telemetry")

DEFAULT_PORT = 4323
RUNTIME_DONE = "platform.runtimeDone"
#: A batch larger than this is refused (the platform's buffering caps a batch at 1 MiB).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: A client that sends nothing for this long is dropped (the platform reconnects at will).
IDLE_TIMEOUT_S = 300.0

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _bind_host() -> str:
    try:
        return socket.gethostbyname("sandbox.localdomain")
    except OSError:
        return "127.0.0.1"


def _read_request(reader: Reader, sock: socket.socket) -> Optional[Tuple[str, Dict[str, str], bytes]]:
    """(method, headers by lower-case name, body); None when the client closed between requests."""
    head = reader.head()
    if head is None:
        return None
    start, headers = head
    if len(start) != 3 or not start[2].startswith("HTTP/1."):
        raise MalformedMessage(400, "not an HTTP/1.x request line")
    if headers.get("expect", "").lower() == "100-continue" and start[2] != "HTTP/1.0":
        sock.sendall(_CONTINUE)  # a client may hold the body back until it hears this
    return start[0], headers, reader.body(headers, MAX_BODY_BYTES)


class TelemetryListener:
    def __init__(self, on_runtime_done: Callable[[str, str], None]) -> None:
        self._on_runtime_done = on_runtime_done
        self._server: Optional[socket.socket] = None
        self._closed = threading.Event()

    def start(self, port: int = DEFAULT_PORT) -> int:
        """Listen now (a subscription's first batch may come at once) and serve on a thread."""
        host = _bind_host()
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind((host, port))
        except OSError:
            server.bind((host, 0))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), name="defer-telemetry", daemon=True).start()
        return int(server.getsockname()[1])

    def _accept(self, server: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                if self._closed.is_set():
                    return
                continue  # e.g. EMFILE for a moment: the platform retries its POST
            try:
                threading.Thread(target=self._serve, args=(client,), name="defer-telemetry-conn",
                                 daemon=True).start()
            except RuntimeError:  # no thread to be had: this batch is lost, not the extension
                client.close()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(IDLE_TIMEOUT_S)
        reader = Reader(client)
        try:
            while True:
                try:
                    request = _read_request(reader, client)
                except MalformedMessage as exc:
                    client.sendall(f"HTTP/1.1 {exc.status} Bad Request\r\nContent-Length: 0\r\n"
                                   f"Connection: close\r\n\r\n".encode())
                    log.warning("telemetry request refused: %s", exc)
                    return
                if request is None:
                    return
                method, headers, body = request
                client.sendall(_OK)
                if method == "POST":
                    self.handle_batch(body)
                if headers.get("connection", "").lower() == "close":
                    return
        except OSError:
            return
        finally:
            client.close()

    def handle_batch(self, payload: bytes) -> None:
        try:
            events = json.loads(payload)
        except ValueError:
            log.warning("telemetry batch is not JSON")
            return
        for event in events if isinstance(events, list) else []:
            if isinstance(event, dict) and event.get("type") == RUNTIME_DONE:
                record = event.get("record") or {}
                if not isinstance(record, dict):
                    continue
                self._on_runtime_done(str(record.get("requestId", "")), str(record.get("status", "")))

    def stop(self) -> None:
        self._closed.set()
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
