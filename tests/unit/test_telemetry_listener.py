"""The extension's Telemetry API listener over real sockets: the platform's POSTs (keep-alive,
sized or chunked) reach ``on_runtime_done``, and nothing a client sends can stop it serving."""
from __future__ import annotations

import http.client
import json
import socket
import time
from typing import List, Tuple

import pytest

from extension.telemetry import MAX_BODY_BYTES, TelemetryListener


@pytest.fixture
def listener():
    seen: List[Tuple[str, str]] = []
    listening = TelemetryListener(lambda rid, status: seen.append((rid, status)))
    port = listening.start(port=0)
    yield listening, port, seen
    listening.stop()


def _batch(*ids: str) -> bytes:
    return json.dumps([{"type": "platform.start", "record": {"requestId": "x"}}] +
                      [{"type": "platform.runtimeDone", "record": {"requestId": i, "status": "success"}}
                       for i in ids]).encode()


def _wait(seen: list, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.005)


def _host(listening: TelemetryListener) -> str:
    return listening._server.getsockname()[0]  # type: ignore[union-attr]


def test_batches_on_one_keep_alive_connection(listener):
    listening, port, seen = listener
    conn = http.client.HTTPConnection(_host(listening), port, timeout=5)
    for rid in ("r1", "r2", "r3"):
        conn.request("POST", "/telemetry", _batch(rid), {"Content-Type": "application/json"})
        reply = conn.getresponse()
        assert reply.status == 200 and reply.read() == b""
    _wait(seen, 3)
    assert seen == [("r1", "success"), ("r2", "success"), ("r3", "success")]


def test_a_chunked_batch(listener):
    listening, port, seen = listener
    conn = http.client.HTTPConnection(_host(listening), port, timeout=5)
    body = _batch("c1", "c2")
    conn.request("POST", "/telemetry", iter([body[:7], body[7:]]), {"Transfer-Encoding": "chunked"},
                 encode_chunked=True)
    assert conn.getresponse().status == 200
    _wait(seen, 2)
    assert seen == [("c1", "success"), ("c2", "success")]


@pytest.mark.parametrize("raw, status", [
    (b"NONSENSE\r\n\r\n", b"400"),
    (b"POST /t HTTP/1.1\r\nContent-Length: nope\r\n\r\n", b"400"),
    (b"POST /t HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1), b"413"),
    (b"POST /t HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
    (b"POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"400"),
])
def test_a_hostile_request_is_refused_and_the_next_client_is_served(listener, raw, status):
    listening, port, seen = listener
    with socket.create_connection((_host(listening), port), timeout=5) as sock:
        sock.sendall(raw)
        assert sock.recv(100).split(b" ")[1] == status
    for body in (b"not json", json.dumps({"not": "a list"}).encode(),
                 json.dumps([{"type": "platform.runtimeDone", "record": "not a dict"}, 7]).encode()):
        conn = http.client.HTTPConnection(_host(listening), port, timeout=5)
        conn.request("POST", "/telemetry", body)
        assert conn.getresponse().status == 200
    conn = http.client.HTTPConnection(_host(listening), port, timeout=5)
    conn.request("POST", "/telemetry", _batch("after"))
    assert conn.getresponse().status == 200
    _wait(seen, 1)
    assert seen == [("after", "success")]


def test_a_client_that_hangs_up_mid_request_does_not_stop_the_listener(listener):
    listening, port, seen = listener
    with socket.create_connection((_host(listening), port), timeout=5) as sock:
        sock.sendall(b"POST /t HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"half")
    conn = http.client.HTTPConnection(_host(listening), port, timeout=5)
    conn.request("POST", "/telemetry", _batch("next"))
    assert conn.getresponse().status == 200
    _wait(seen, 1)
    assert seen == [("next", "success")]


def test_stop_closes_the_port_at_once():
    listening = TelemetryListener(lambda rid, status: None)
    port = listening.start(port=0)
    host = _host(listening)
    started = time.monotonic()
    listening.stop()
    assert time.monotonic() - started < 0.2
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1).close()
