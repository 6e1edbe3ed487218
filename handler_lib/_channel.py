"""The function side of the unix-socket channel: one connection per process, reconnect once.

``sendall`` of an already-encoded frame is the whole hot path; frames are written at once
(never buffered in the function), so a handler that is killed right after deferring has
already handed its items over.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from typing import Optional

from . import wire


SEND_BUFFER_BYTES = 4 * 1024 * 1024  # the kernel caps it at net.core.wmem_max


class ChannelUnavailable(ConnectionError):
    """No defer-runner extension is listening on the socket."""


class SocketChannel:
    def __init__(self, path: str, *, wrapped: bool) -> None:
        self.path = path
        self._wrapped = wrapped
        self._sock: Optional[socket.socket] = None
        self._lock = threading.Lock()
        self._pid = 0

    @property
    def connected(self) -> bool:
        return self._sock is not None and self._pid == os.getpid()

    def mark_wrapped(self) -> None:
        """Tell the extension (again, on a live connection) that the handler sends end markers."""
        if self._wrapped:
            return
        self._wrapped = True
        if self.connected:
            self.send(wire.encode(self._hello()))

    def connect(self) -> None:
        """Open the connection and introduce this process; raise ChannelUnavailable."""
        with self._lock:
            self._connect_locked()

    def send(self, frame: bytes) -> None:
        """Write one encoded frame; on a broken connection reconnect once and resend."""
        with self._lock:
            if self._sock is None or self._pid != os.getpid():
                self._connect_locked()
            try:
                self._sock.sendall(frame)  # type: ignore[union-attr]
                return
            except OSError:
                self._close_locked()
            self._connect_locked()
            try:
                self._sock.sendall(frame)  # type: ignore[union-attr]
            except OSError as exc:
                self._close_locked()
                raise ChannelUnavailable(f"defer-runner socket {self.path} broke: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _hello(self) -> wire.Hello:
        task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
        return wire.Hello(pid=os.getpid(), task_root=task_root, sys_path=[p for p in sys.path if p],
                          wrapped=self._wrapped)

    def _connect_locked(self) -> None:
        self._close_locked()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # A burst of deferrals should land in the kernel buffer, not wait on the reader.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            sock.connect(self.path)
            sock.sendall(wire.encode(self._hello()))
        except OSError as exc:
            sock.close()
            raise ChannelUnavailable(f"no defer-runner listening on {self.path}: {exc}") from exc
        self._sock = sock
        self._pid = os.getpid()

    def _close_locked(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
