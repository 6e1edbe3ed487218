"""HTTP/1.1 messages read off a plain socket: heads, and bodies sized or chunked.

The extension's two HTTP peers (the Extensions API it calls, the Telemetry API that posts to
its listener) share this reader. ``http.client`` and ``http.server`` would do it, at ~12 ms of
CPU to import (email, ssl) before the extension can call ``next``, where init waits for it.
"""

from __future__ import annotations

import socket
from typing import Dict, List, Optional, Tuple

#: A head (start line and headers) larger than this is refused.
MAX_HEAD_BYTES = 64 * 1024


class MalformedMessage(ValueError):
    """What came is not an HTTP/1.x message this reader can take; ``status`` is the answer a
    server gives it (400, 413, 431)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Reader:
    """Buffered reads off one connection. A peer that closes inside a message raises
    ConnectionResetError; a socket timeout or error propagates as the OSError it is."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self._buffer += data
        return True

    def _line(self, limit: int) -> Optional[bytes]:
        """One line without its CRLF (or bare LF); None when the peer closed before it."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                break
            if len(self._buffer) > limit:
                raise MalformedMessage(431, "header line too long")
            if not self._fill():
                if self._buffer:
                    raise ConnectionResetError("the peer closed the connection inside a message")
                return None
        if end > limit:
            raise MalformedMessage(431, "header line too long")
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 1]
        return line[:-1] if line.endswith(b"\r") else line

    def _required_line(self, limit: int) -> bytes:
        line = self._line(limit)
        if line is None:
            raise ConnectionResetError("the peer closed the connection inside a message")
        return line

    def exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            if not self._fill():
                raise ConnectionResetError("the peer closed the connection inside a message")
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def rest(self, limit: int) -> bytes:
        """Everything up to the peer's close (a reply with neither length nor chunks)."""
        while len(self._buffer) <= limit and self._fill():
            pass
        if len(self._buffer) > limit:
            raise MalformedMessage(413, "body too large")
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def head(self) -> Optional[Tuple[List[str], Dict[str, str]]]:
        """(start line split in three at most, headers by lower-case name); None when the peer
        closed between messages. Blank lines before a message are skipped (RFC 9112 2.2)."""
        line = self._line(MAX_HEAD_BYTES)
        while line == b"":
            line = self._line(MAX_HEAD_BYTES)
        if line is None:
            return None
        start = line.decode("latin-1").split(None, 2)
        headers: Dict[str, str] = {}
        size = len(line)
        while True:
            header = self._required_line(MAX_HEAD_BYTES)
            if header == b"":
                return start, headers
            size += len(header)
            if size > MAX_HEAD_BYTES:
                raise MalformedMessage(431, "headers too large")
            name, sep, value = header.partition(b":")
            if not sep:
                raise MalformedMessage(400, "malformed header")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")

    def body(self, headers: Dict[str, str], limit: int, until_close: bool = False) -> bytes:
        """The body a head announced: chunked, sized, or (``until_close``, a reply without
        either) up to the close; without either in a request, none."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: List[bytes] = []
            total = 0
            while True:
                size_line = self._required_line(MAX_HEAD_BYTES)
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise MalformedMessage(400, "bad chunk size") from None
                total += size
                if size < 0 or total > limit:
                    raise MalformedMessage(413, "body too large")
                if size == 0:  # the body is whole: trailers up to the blank line, or the close
                    while self._line(MAX_HEAD_BYTES) not in (b"", None):
                        pass
                    return b"".join(chunks)
                chunks.append(self.exactly(size + 2)[:size])
        if "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise MalformedMessage(400, "bad Content-Length") from None
            if length < 0 or length > limit:
                raise MalformedMessage(413, "body too large")
            return self.exactly(length)
        return self.rest(limit) if until_close else b""
