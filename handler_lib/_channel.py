"""The function side of the unix-socket channel: one connection per process, reconnect once.

``sendall`` of an already-encoded frame is the whole hot path; frames are written at once
(never buffered in the function), so a handler that is killed right after deferring has
already handed its items over. The extension answers on the same connection: an ``ack``
for each end-of-invoke marker, and ``backlog`` notices, looked for without blocking every
32 frames or 256 KiB sent (a look on every send would cost more than the send).

A forked child starts with a fresh lock and no connection: the parent's socket and a lock
another thread held at the fork are the parent's, never the child's.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import weakref
from typing import List, Optional

from . import wire


SEND_BUFFER_BYTES = 4 * 1024 * 1024  # the kernel caps it at net.core.wmem_max
CONNECT_TIMEOUT_S = 1.0
POLL_EVERY_FRAMES = 32
POLL_EVERY_BYTES = 256 * 1024


class ChannelUnavailable(ConnectionError):
    """No defer-runner extension is listening on the socket."""


class SocketChannel:
    def __init__(self, path: str, *, wrapped: bool) -> None:
        self.path = path
        self._wrapped = wrapped
        self._sock: Optional[socket.socket] = None
        self._lock = threading.Lock()
        self._pid = 0
        self._replies = wire.FrameReader()
        self.backlogged = False  # the extension said its queue is over its memory bound
        self._poller: Optional["select.poll"] = None
        self._unpolled_frames = 0
        self._unpolled_bytes = 0
        self.connection = 0  # counts connections made: an end marker speaks for its own only
        _CHANNELS.add(self)

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

    def send(self, frame: bytes) -> int:
        """Write one encoded frame; on a broken connection reconnect once and resend. Returns
        the number of the connection it went over."""
        with self._lock:
            if self._sock is None or self._pid != os.getpid():
                self._connect_locked()
            self._unpolled_frames += 1
            self._unpolled_bytes += len(frame)
            if self._unpolled_frames >= POLL_EVERY_FRAMES or self._unpolled_bytes >= POLL_EVERY_BYTES:
                self._poll_replies_locked()
            try:
                self._sock.sendall(frame)  # type: ignore[union-attr]
                return self.connection
            except OSError:
                self._close_locked()
            self._connect_locked()
            try:
                self._sock.sendall(frame)  # type: ignore[union-attr]
                return self.connection
            except OSError as exc:
                self._close_locked()
                raise ChannelUnavailable(f"defer-runner socket {self.path} broke: {exc}") from exc

    def end_invoke(self, end: wire.EndOfInvoke, timeout_s: float) -> Optional[wire.Ack]:
        """Send the end marker and wait (bounded) for its ack; None when none came."""
        with self._lock:
            if self._sock is None or self._pid != os.getpid():
                return None  # a new connection holds none of this invoke's items
            try:
                self._sock.sendall(wire.encode(end))
                return self._await_ack_locked(end.request_id, time.monotonic() + timeout_s)
            except (OSError, wire.FrameDecodeError):
                self._close_locked()
                return None

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _await_ack_locked(self, request_id: str, give_up_at: float) -> Optional[wire.Ack]:
        sock = self._sock
        assert sock is not None
        try:
            data = b""
            while True:
                for frame in self._take_replies(data):
                    if isinstance(frame, wire.Ack) and frame.request_id == request_id:
                        return frame
                left = give_up_at - time.monotonic()
                if left <= 0:
                    return None
                sock.settimeout(left)
                data = sock.recv(65536)
                if not data:
                    raise ConnectionResetError("the extension closed the connection")
        except socket.timeout:
            return None
        finally:
            if self._sock is sock:
                sock.settimeout(None)

    def _poll_replies_locked(self) -> None:
        """Read what the extension said since the last look, without waiting."""
        self._unpolled_frames = self._unpolled_bytes = 0
        sock = self._sock
        if sock is None or self._poller is None or not self._poller.poll(0):
            return
        try:
            data = sock.recv(65536, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # the send that follows finds out and reconnects
        if data:
            try:
                self._take_replies(data)
            except wire.FrameDecodeError:
                self._close_locked()  # the send that follows reconnects

    def _take_replies(self, data: bytes) -> List[wire.Frame]:
        """Decode the extension's replies in ``data``; backlog notices are applied here."""
        frames: List[wire.Frame] = []
        for body in self._replies.feed(data):
            frame = wire.decode(body)
            if isinstance(frame, wire.Backlog):
                self.backlogged = frame.over
            else:
                frames.append(frame)
        return frames

    def _hello(self) -> wire.Hello:
        return wire.Hello(pid=os.getpid(),
                          wrapped=self._wrapped)

    def _connect_locked(self) -> None:
        self._close_locked()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # A burst of deferrals should land in the kernel buffer, not wait on the reader.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            sock.settimeout(CONNECT_TIMEOUT_S)  # a full accept backlog must not hang the handler
            sock.connect(self.path)
            sock.settimeout(None)
            sock.sendall(wire.encode(self._hello()))
        except OSError as exc:
            sock.close()
            raise ChannelUnavailable(f"no defer-runner listening on {self.path}: {exc}") from exc
        self._sock = sock
        self.connection += 1
        self._pid = os.getpid()
        self._replies = wire.FrameReader()
        self.backlogged = False
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)

    def _close_locked(self) -> None:
        self._poller = None
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None

    def _forget_parent(self) -> None:
        """In a forked child: the lock may be held by a parent thread that does not exist here;
        and its hello says it sends no end markers (no invoke ends in it)."""
        self._lock = threading.Lock()
        self._wrapped = False
        if self._sock is not None:
            try:
                self._sock.close()  # the child's copy of the descriptor; the parent's stays open
            except OSError:
                pass
        self._sock = None
        self._pid = 0
        self._poller = None
        self._replies = wire.FrameReader()


_CHANNELS: "weakref.WeakSet[SocketChannel]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for channel in list(_CHANNELS):
        channel._forget_parent()


os.register_at_fork(after_in_child=_after_fork_in_child)
