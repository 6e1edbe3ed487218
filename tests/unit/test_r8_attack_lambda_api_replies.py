"""The hand-written Extensions API client (``_Http``) against replies a conforming HTTP/1.1
server may send. Found: an interim ``1xx`` reply (``100 Continue`` before the ``200``, which
RFC 9110 lets a server send unasked and ``http.client``, the client before, skipped) was
returned as the reply itself, with an empty body, and the real reply was left in the socket,
to be read as the answer to the *next* request: every later call was off by one.

Real sockets: a scripted server (tests/unit/test_lambda_api_client._Scripted).
"""
from __future__ import annotations

from extension.lambda_api import _Http
from tests.unit.test_lambda_api_client import _Scripted

EVENT = b'{"eventType":"INVOKE","requestId":"r1","deadlineMs":1}'


def test_an_interim_100_continue_is_skipped_and_the_connection_stays_in_step():
    server = _Scripted([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\n"
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(EVENT), EVENT),
                        b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}"])
    try:
        client = _Http(server.address)
        assert client.request("GET", "/2020-01-01/extension/event/next")[::2] == (200, EVENT)
        assert client.request("POST", "/2020-01-01/extension/exit/error", b"{}")[::2] == (202, b"{}")
    finally:
        server.close()


def test_odd_but_valid_replies_are_read():  # held: HTTP/1.0, header case, chunk extensions and trailers
    server = _Scripted([b"HTTP/1.0 200 OK\r\ncOnTeNt-LeNgTh: 1\r\n\r\na",
                        b"HTTP/1.1 200 OK\r\ntransfer-ENCODING: Chunked\r\n\r\n1;ext=1\r\nb\r\n0\r\nX-Trailer: t\r\n\r\n",
                        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc"])
    try:
        client = _Http(server.address)
        assert client.request("GET", "/x")[::2] == (200, b"a")  # HTTP/1.0: the server closes, a new one follows
        assert client.request("GET", "/x")[::2] == (200, b"b")
        assert client.request("GET", "/x")[::2] == (200, b"c")
        assert server.connections == 2
    finally:
        server.close()
