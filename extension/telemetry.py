"""Telemetry API listener: ``platform.runtimeDone`` says the runtime finished an invoke.

Used to know when to drain for a handler not wrapped by ``@defer`` (which sends no
end-of-invoke marker). Where the platform does not deliver telemetry (AWS's emulator
answers 202 ``Telemetry.NotSupported``) the runner simply does without it.

The listener speaks just enough HTTP/1.1 for the one client it has (the platform POSTs JSON
arrays, keep-alive, Content-Length or chunked) on a plain socket: ``http.server`` and what it
imports (``http.client``, ``email``, ``ssl``) cost 12 ms of CPU before the extension could say
it is ready, a fifth of its start (bench ``--only startup``).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from typing import Callable, Dict, List, Optional, Tuple

log = logging.getLogger("defer_runner.telemetry")

DEFAULT_PORT = 4323
RUNTIME_DONE = "platform.runtimeDone"
#: A batch larger than this is refused (the platform's buffering caps a batch at 1 MiB).
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_HEAD_BYTES = 64 * 1024
#: A client that sends nothing for this long is dropped (the platform reconnects at will).
IDLE_TIMEOUT_S = 300.0

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class BadRequest(ValueError):
    """What came is not an HTTP request this listener can read."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _bind_host() -> str:
    try:
        return socket.gethostbyname("sandbox.localdomain")
    except OSError:
        return "127.0.0.1"


class _Connection:
    """Reads requests off one client connection, buffered."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self._buffer += data
        return True

    def read_line(self, limit: int) -> Optional[bytes]:
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > limit:
                raise BadRequest(431, "header line too long")
            if not self._fill():
                return None
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def read_exactly(self, count: int) -> Optional[bytes]:
        while len(self._buffer) < count:
            if not self._fill():
                return None
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def read_request(self) -> Optional[Tuple[str, Dict[str, str], bytes]]:
        """(method, headers with lower-case names, body); None when the client closed."""
        line = self.read_line(MAX_HEAD_BYTES)
        while line == b"":  # tolerate blank lines between requests
            line = self.read_line(MAX_HEAD_BYTES)
        if line is None:
            return None
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise BadRequest(400, "not an HTTP/1.x request line")
        headers: Dict[str, str] = {}
        head_bytes = len(line)
        while True:
            header = self.read_line(MAX_HEAD_BYTES)
            if header is None:
                return None
            if header == b"":
                break
            head_bytes += len(header)
            if head_bytes > MAX_HEAD_BYTES:
                raise BadRequest(431, "headers too large")
            name, sep, value = header.partition(b":")
            if not sep:
                raise BadRequest(400, "malformed header")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if headers.get("expect", "").lower() == "100-continue" and parts[2] != b"HTTP/1.0":
            self.sock.sendall(_CONTINUE)  # a client may hold the body back until it hears this
        body = self._read_body(headers)
        if body is None:
            return None
        return parts[0].decode("latin-1"), headers, body

    def _read_body(self, headers: Dict[str, str]) -> Optional[bytes]:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: List[bytes] = []
            total = 0
            while True:
                size_line = self.read_line(MAX_HEAD_BYTES)
                if size_line is None:
                    return None
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadRequest(400, "bad chunk size") from None
                total += size
                if size < 0 or total > MAX_BODY_BYTES:
                    raise BadRequest(413, "body too large")
                if size == 0:
                    while True:  # trailers, up to the blank line
                        trailer = self.read_line(MAX_HEAD_BYTES)
                        if trailer is None:
                            return None
                        if trailer == b"":
                            return b"".join(chunks)
                chunk = self.read_exactly(size + 2)
                if chunk is None:
                    return None
                chunks.append(chunk[:size])
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            raise BadRequest(400, "bad Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise BadRequest(413, "body too large")
        return self.read_exactly(length)


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
        connection = _Connection(client)
        try:
            while True:
                try:
                    request = connection.read_request()
                except BadRequest as exc:
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
