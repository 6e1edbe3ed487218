"""The extension's HTTP client for the Lambda APIs recovers from a broken connection: after a
refused or cut call, the next one opens a new connection instead of failing for good."""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from extension.lambda_api import _Http
from tests.support.waiting import free_port


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def test_a_refused_call_does_not_poison_the_next_one():
    port = free_port()
    client = _Http(f"127.0.0.1:{port}")
    with pytest.raises(OSError):
        client.request("GET", "/next")  # nothing listens yet
    server = ThreadingHTTPServer(("127.0.0.1", port), _Ok)  # a kept-alive connection holds its own thread
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, _, body = client.request("GET", "/next")
        assert (status, body) == (200, b"ok")
    finally:
        server.shutdown()
        server.server_close()


def test_a_malformed_reply_is_a_connection_error_and_the_next_call_starts_afresh():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()  # the first call gets garbage, the next a proper reply
        conn.recv(65536)
        conn.sendall(b"garbage\r\n\r\n")
        conn.close()
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    client = _Http(f"127.0.0.1:{port}")
    with pytest.raises(ConnectionError):
        client.request("GET", "/next")
    assert client.request("GET", "/next")[0] == 200
    listener.close()
