"""The hand-written Telemetry API listener against what an HTTP/1.1 client may send.

Found: a POST with ``Expect: 100-continue`` got no ``100 Continue``: a client that waits for it
before sending the body (curl waits 1 s, Go's Transport its ExpectContinueTimeout, others
until their own timeout) delays that batch, and the ``platform.runtimeDone`` in it holds the
invoke's drain and the environment that long. The listener now answers it before reading the
body. What held is kept as tests too: pipelined requests, a request with both chunked and
Content-Length (chunked wins, RFC 9112 §6.3), a long header block, a batch that is not UTF-8.

Real sockets against the real listener; every wait is bounded.
"""
from __future__ import annotations

import json
import socket
import time
from typing import List, Tuple

import pytest

from extension.telemetry import TelemetryListener
from tests.support.waiting import wait_until


@pytest.fixture
def listener():
    seen: List[Tuple[str, str]] = []
    listening = TelemetryListener(lambda rid, status: seen.append((rid, status)))
    port = listening.start(port=0)
    yield (listening._server.getsockname()[0], port), seen  # type: ignore[union-attr]
    listening.stop()


def _batch(rid: str) -> bytes:
    return json.dumps([{"type": "platform.runtimeDone", "record": {"requestId": rid, "status": "success"}}]).encode()


def _read_replies(sock: socket.socket, count: int) -> bytes:
    got = b""
    deadline = time.monotonic() + 5
    while got.count(b"HTTP/1.1 ") < count and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(65536)
        if not data:
            break
        got += data
    return got


def test_expect_100_continue_is_answered_before_the_body(listener):
    address, seen = listener
    body = _batch("r1")
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"POST /telemetry HTTP/1.1\r\nHost: sandbox\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        sock.settimeout(1.0)  # the listener has the headers: it says go on at once
        try:
            interim = sock.recv(100)
        except socket.timeout:
            interim = b""
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
        sock.sendall(body)
        assert b"HTTP/1.1 200" in interim + _read_replies(sock, 1)
    wait_until(lambda: seen, 5)
    assert seen == [("r1", "success")]


def test_pipelined_requests_both_chunked_and_sized_and_odd_bodies_are_served(listener):  # held
    address, seen = listener
    first, second, third = _batch("p1"), _batch("p2"), _batch("p3")
    many_headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 20) for i in range(1000))
    raw = (b"POST /t HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(first), first)
           + b"POST /t HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
           % (len(second), second)
           + b"POST /t HTTP/1.1\r\nContent-Length: 4\r\n\r\n\xff\xfe\x00\x01"  # not UTF-8, not JSON
           + b"POST /t HTTP/1.1\r\n" + many_headers + b"Content-Length: %d\r\n\r\n%s" % (len(third), third))
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(raw)
        replies = _read_replies(sock, 4)
    assert replies.count(b"HTTP/1.1 200 OK") == 4, replies
    wait_until(lambda: len(seen) == 3, 5)
    assert seen == [("p1", "success"), ("p2", "success"), ("p3", "success")]
