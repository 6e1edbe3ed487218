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


class _Scripted:
    """A server that answers each request on a connection with the next of ``replies`` (raw
    bytes), then closes the connection when ``close_after`` replies went out on it."""

    def __init__(self, replies: list, close_after: int = 1000) -> None:
        self.replies = list(replies)
        self.close_after = close_after
        self.requests: list = []
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        served = 0
        with conn:
            while served < self.close_after:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n")
                               if h.lower().startswith(b"content-length:")), 0)
                self.requests.append(head + reader.read(length))
                conn.sendall(self.replies.pop(0))
                served += 1

    def close(self) -> None:
        self.sock.close()


def test_keep_alive_reuses_one_connection_and_reads_chunked_and_sized_bodies():
    server = _Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsec\r\n3;x=y\r\nond\r\n0\r\n\r\n",
                        b"HTTP/1.1 204 No Content\r\n\r\n"])
    try:
        client = _Http(server.address)
        assert client.request("GET", "/a")[::2] == (200, b"first")
        assert client.request("POST", "/b", b"{}", {"X-Id": "1"})[::2] == (200, b"second")
        assert client.request("GET", "/c")[::2] == (204, b"")
        assert server.connections == 1
        assert server.requests[1].startswith(b"POST /b HTTP/1.1\r\n") and server.requests[1].endswith(b"\r\n\r\n{}")
        assert b"X-Id: 1\r\n" in server.requests[1]
    finally:
        server.close()


def test_a_keep_alive_the_server_closed_is_sent_again_on_a_new_connection():
    # The server answers one request per connection, then hangs up without saying so: the
    # second call finds the old connection dead and must go out once more on a new one.
    server = _Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
                        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"], close_after=1)
    try:
        client = _Http(server.address)
        assert client.request("GET", "/event/next")[2] == b"a"
        assert client.request("GET", "/event/next")[2] == b"b"
        assert server.connections == 2 and len(server.requests) == 2
    finally:
        server.close()


def test_a_reply_cut_inside_its_body_is_an_error_not_a_short_body():
    server = _Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"] * 2, close_after=1)
    try:
        with pytest.raises(ConnectionError):
            _Http(server.address).request("GET", "/event/next")
    finally:
        server.close()


def test_connection_close_is_honoured():
    server = _Scripted([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
                        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"], close_after=1)
    try:
        client = _Http(server.address)
        assert client.request("GET", "/x")[2] == b"a"
        assert client.request("GET", "/x")[2] == b"b"
        assert server.connections == 2
    finally:
        server.close()
