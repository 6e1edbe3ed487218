"""The extension's one HTTP/1.1 reader (Extensions API replies, Telemetry API requests) on a
real socket pair: what a peer may send, split anywhere, and what it must not."""

from __future__ import annotations

import socket
import threading
from typing import Iterator, List, Tuple

import pytest

from extension.http11 import MAX_HEAD_BYTES, MalformedMessage, Reader


def _reader(*pieces: bytes, close: bool = True) -> Tuple[Reader, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.settimeout(5)

    def send() -> None:
        for piece in pieces:
            theirs.sendall(piece)
        if close:
            theirs.shutdown(socket.SHUT_WR)

    threading.Thread(target=send, daemon=True).start()
    return Reader(ours), theirs


def _bytewise(data: bytes) -> Iterator[bytes]:
    return (data[i:i + 1] for i in range(len(data)))


MESSAGE = (b"POST /telemetry HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n"
           b"PUT /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")


@pytest.mark.parametrize("split", ["whole", "bytewise"])
def test_two_requests_on_one_connection_chunked_then_sized(split: str) -> None:
    pieces: List[bytes] = [MESSAGE] if split == "whole" else list(_bytewise(MESSAGE))
    reader, _ = _reader(*pieces)
    heads = []
    bodies = []
    while (head := reader.head()) is not None:
        heads.append(head[0])
        bodies.append(reader.body(head[1], 100))
    assert heads == [["POST", "/telemetry", "HTTP/1.1"], ["PUT", "/b", "HTTP/1.1"]]
    assert bodies == [b"hello world", b"abc"]


def test_bare_newlines_blank_lines_before_a_message_and_header_case() -> None:
    reader, _ = _reader(b"\r\n\nHTTP/1.1 200 OK\nLambda-Extension-Identifier:  abc \nContent-Length: 2\n\nok")
    start, headers = reader.head() or ([], {})
    assert start == ["HTTP/1.1", "200", "OK"]
    assert headers == {"lambda-extension-identifier": "abc", "content-length": "2"}
    assert reader.body(headers, 10) == b"ok"


def test_a_reply_without_length_runs_to_the_close_and_a_request_without_one_has_none() -> None:
    reader, _ = _reader(b"HTTP/1.0 200 OK\r\n\r\nall of it")
    _, headers = reader.head() or ([], {})
    assert reader.body(headers, 100, until_close=True) == b"all of it"
    reader, _ = _reader(b"GET / HTTP/1.1\r\n\r\n")
    _, headers = reader.head() or ([], {})
    assert reader.body(headers, 100) == b""


@pytest.mark.parametrize("data,status", [
    (b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n", 431),  # one line too long
    (b"GET / HTTP/1.1\r\n" + b"X: aaaaaaaaaa\r\n" * (MAX_HEAD_BYTES // 13 + 2) + b"\r\n", 431),  # many lines
    (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 413),
    (b"GET / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413),
    (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + b"a" * 64 + b"\r\n40\r\n", 413),
])
def test_what_is_not_a_message_it_can_take_is_refused_with_its_status(data: bytes, status: int) -> None:
    reader, _ = _reader(data, close=False)  # refused without waiting for more
    with pytest.raises(MalformedMessage) as refused:
        head = reader.head()
        assert head is not None
        reader.body(head[1], 100)
    assert refused.value.status == status


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nHost: x",  # inside the head
    b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",  # inside a sized body
    b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",  # inside a chunk
])
def test_a_peer_closing_inside_a_message_is_a_reset_not_a_short_message(data: bytes) -> None:
    reader, _ = _reader(data)
    with pytest.raises(ConnectionResetError):
        head = reader.head()
        assert head is not None
        reader.body(head[1], 100)


def test_a_peer_closing_between_messages_is_the_end() -> None:
    reader, _ = _reader(b"GET / HTTP/1.1\r\n\r\n")
    assert reader.head() is not None
    assert reader.head() is None


def test_a_silent_peer_times_out_as_the_socket_says() -> None:
    reader, _ = _reader(b"GET / HTTP/1.1\r\n", close=False)
    reader.sock.settimeout(0.2)
    with pytest.raises(socket.timeout):
        reader.head()


def test_a_chunked_body_whose_peer_closes_before_the_trailers_end_is_whole() -> None:
    """The last chunk came: the body is complete (an event taken for a stale connection's
    would make the client ask for ``next`` again and lose it)."""
    reader, _ = _reader(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n")
    _, headers = reader.head() or ([], {})
    assert reader.body(headers, 100) == b"{}"


def test_a_reply_running_to_the_close_is_bounded_too() -> None:
    reader, _ = _reader(b"HTTP/1.0 200 OK\r\n\r\n" + b"a" * 300)
    _, headers = reader.head() or ([], {})
    with pytest.raises(MalformedMessage) as refused:
        reader.body(headers, 100, until_close=True)
    assert refused.value.status == 413
