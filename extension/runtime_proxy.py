"""A Runtime API proxy: the exact moment the runtime posts each invoke's response.

With ``AWS_LAMBDA_EXEC_WRAPPER=/opt/defer-runner/exec-wrapper`` (the supported hook for wrapping the
runtime's start), the runtime talks to the Runtime API through this proxy instead of
directly. Everything is relayed byte for byte; the proxy only notes when a
``POST /runtime/invocation/<id>/response`` (or ``/error``) has been accepted, and tells the
runner at once. That signal does not depend on the handler's decorators, on the Telemetry
API (which RIE and ``sam local`` lack and which buffers at least 25 ms), or on the execution
model: each runtime worker of a Managed Instances function has its own connection.

stdlib only, bound before ``register``: the runtime starts as soon as the extensions have
registered, and its first request must find the port open. The port goes to a file next to
the channel's socket, where the wrapper reads it; the wrapper checks it answers before
using it, so a stale file from an earlier life never strands the runtime.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from typing import Callable, List, Optional, Tuple

#: The runtime's calls whose acceptance means "the handler of this request is done".
_DONE = re.compile(rb"^POST /[0-9-]+/runtime/invocation/([^/ ]+)/(?:response|error) ")
_MAX_HEAD_BYTES = 64 * 1024

ResponsePosted = Callable[[str], None]


def port_file(socket_path: str) -> str:
    """Where the wrapper finds the proxy's port (one per environment, beside the socket)."""
    return socket_path + ".runtime-api"


class RuntimeApiProxy:
    """Listen now; relay (and report) once :meth:`start` is called after registering."""

    def __init__(self, upstream: str, socket_path: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host or "127.0.0.1", int(port))
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.port_file = port_file(socket_path)
        tmp = f"{self.port_file}.{os.getpid()}"
        with open(tmp, "w") as fh:
            fh.write(self.address)
        os.replace(tmp, self.port_file)
        self._on_posted: Optional[ResponsePosted] = None
        self._early: List[str] = []  # responses posted before the runner listened
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._accept_loop, name="defer-runtime-proxy", daemon=True).start()

    def subscribe(self, on_posted: ResponsePosted) -> None:
        with self._lock:
            self._on_posted, early, self._early = on_posted, self._early, []
        for request_id in early:
            on_posted(request_id)

    def close(self) -> None:
        try:
            os.unlink(self.port_file)
        except OSError:
            pass

    def _posted(self, request_id: str) -> None:
        with self._lock:
            callback = self._on_posted
            if callback is None:
                self._early.append(request_id)
                return
        callback(request_id)

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue  # out of descriptors: the runtime retries its call
            threading.Thread(target=self._relay, args=(client,), name="defer-runtime-relay",
                             daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        upstream: Optional[socket.socket] = None
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = socket.create_connection(self.upstream)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            from_client, from_upstream = _Stream(client), _Stream(upstream)
            while True:
                request = from_client.message(is_request=True)
                if request is None:
                    return
                upstream.sendall(request)
                response = from_upstream.message(is_request=False)
                if response is None:
                    return
                client.sendall(response)
                done = _DONE.match(request)
                if done and response[9:10] == b"2":  # "HTTP/1.1 2xx": the runtime's answer was taken
                    self._posted(done.group(1).decode("ascii", "replace"))
        except OSError:
            return
        finally:
            client.close()
            if upstream is not None:
                upstream.close()


class _Stream:
    """Whole HTTP/1.1 messages off one socket (Content-Length or chunked bodies)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def _take(self, n: int) -> Optional[bytes]:
        while len(self.buf) < n:
            if not self._fill():
                return None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _line(self) -> Optional[bytes]:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                return self._take(end + 2)
            if len(self.buf) > _MAX_HEAD_BYTES or not self._fill():
                return None

    def message(self, *, is_request: bool) -> Optional[bytes]:
        """One message, head and body, exactly as received; None when the peer closed."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buf) > _MAX_HEAD_BYTES or not self._fill():
                return None
        head = self._take(end + 4)
        assert head is not None
        length, chunked = _body_framing(head)
        if chunked:
            body = self._chunks()
        elif length is not None:
            body = self._take(length)
        elif is_request:
            body = b""
        else:
            body = self._rest()  # no framing: the body runs to the end of the connection
        return None if body is None else head + body

    def _chunks(self) -> Optional[bytes]:
        parts: List[bytes] = []
        while True:
            size_line = self._line()
            if size_line is None:
                return None
            parts.append(size_line)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = self._line()
                    if line is None:
                        return None
                    parts.append(line)
                    if line == b"\r\n":
                        return b"".join(parts)
            chunk = self._take(size + 2)
            if chunk is None:
                return None
            parts.append(chunk)

    def _rest(self) -> bytes:
        while self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


def _body_framing(head: bytes) -> Tuple[Optional[int], bool]:
    length: Optional[int] = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if head.startswith(b"HTTP/") and head[9:12] in (b"204", b"304"):
        return 0, False
    return length, chunked
