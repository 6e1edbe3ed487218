"""The function side of the unix-socket channel: one connection per process, reconnect once.

One non-blocking ``send`` of an already-encoded frame is the whole hot path; frames are
written at once (never buffered in the function), so a handler that is killed right after
deferring has already handed its items over. The extension answers on the same connection:
a ``backlog`` notice for the hello (the connection is usable only once one came: a reader
past its connection cap closes a connection unread, after ``connect`` and the first writes
succeeded), an ``ack`` for each end-of-invoke marker, and ``backlog`` notices, looked for
without blocking every 32 frames or 256 KiB sent (a look on every send would cost more
than the send).

Nothing waits on the extension without a bound: for the answer to the hello at most
``WELCOME_TIMEOUT_S``, for a send that makes no progress (a full socket buffer: a reader
that hangs, or was stopped) at most ``SEND_STALL_S`` and never past the caller's deadline.
Then ``ChannelUnavailable`` is raised (``ChannelStalled`` when the wait was spent), the
connection is closed, and the caller delivers the item itself.

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
#: How long the reader has to answer a new connection's hello before it counts as unusable.
WELCOME_TIMEOUT_S = 1.0
#: How long a send may make no progress (the socket's buffer full) before it is given up.
SEND_STALL_S = 1.0
POLL_EVERY_FRAMES = 32
POLL_EVERY_BYTES = 256 * 1024


class ChannelUnavailable(ConnectionError):
    """No defer-runner extension is listening on the socket, or none that reads it."""


class ChannelStalled(ChannelUnavailable):
    """The extension did not answer, or read nothing, within the bound: a wait was spent."""


class SocketChannel:
    def __init__(self, path: str, *, wrapped: bool, posts: bool = False) -> None:
        self.path = path
        self._wrapped = wrapped
        self._posts = posts  # the process reports its runtime's posts (an end marker for every invoke)
        self._sock: Optional[socket.socket] = None
        self._lock = threading.Lock()
        self._pid = 0
        self._replies = wire.FrameReader()
        self.backlogged = False  # the extension said its queue is over its memory bound
        self._poller: Optional["select.poll"] = None
        self._unpolled_frames = 0
        self._unpolled_bytes = 0
        self._welcomed = False  # the reader answered this connection's hello: it reads it
        self.connection = 0  # counts connections made: an end marker speaks for its own only
        _CHANNELS.add(self)

    @property
    def connected(self) -> bool:
        return self._sock is not None and self._pid == os.getpid()

    def mark_wrapped(self, posts: bool = False) -> None:
        """Tell the extension (again, on a live connection) that the handler sends end markers
        (``posts``: for every invoke, as the runtime posts its response)."""
        if self._wrapped and self._posts == posts:
            return
        self._wrapped, self._posts = True, posts
        with self._lock:
            if self._sock is not None and self._pid == os.getpid():
                try:
                    self._write_locked(wire.encode(self._hello()), time.monotonic() + SEND_STALL_S)
                except OSError:
                    self._close_locked()  # the next send reconnects, with this hello

    def connect(self) -> None:
        """Open the connection and introduce this process; raise ChannelUnavailable. The
        reader's answer is awaited by the first send."""
        with self._lock:
            self._connect_locked()

    def send(self, frame: bytes, give_up_at: Optional[float] = None) -> int:
        """Write one encoded frame; on a broken connection reconnect once and resend. Returns
        the number of the connection it went over. Waits on the extension at most the bounds
        above, and never past ``give_up_at`` (monotonic); raises ChannelUnavailable."""
        with self._lock:
            if self._sock is None or self._pid != os.getpid():
                self._connect_locked()
            if not self._welcomed:
                self._await_welcome_locked(give_up_at)
            self._unpolled_frames += 1
            self._unpolled_bytes += len(frame)
            if self._unpolled_frames >= POLL_EVERY_FRAMES or self._unpolled_bytes >= POLL_EVERY_BYTES:
                self._poll_replies_locked()
            try:
                self._write_locked(frame, give_up_at)
                return self.connection
            except ChannelStalled:
                self._close_locked()  # part of the frame may be in the socket: the stream is cut
                raise
            except OSError:
                self._close_locked()
            self._connect_locked()
            try:
                self._await_welcome_locked(give_up_at)
                self._write_locked(frame, give_up_at)
                return self.connection
            except OSError as exc:
                self._close_locked()
                if isinstance(exc, ChannelUnavailable):
                    raise
                raise ChannelUnavailable(f"defer-runner socket {self.path} broke: {exc}") from exc

    def end_invoke(self, end: wire.EndOfInvoke, timeout_s: float) -> Optional[wire.Ack]:
        """Send the end marker and wait (bounded) for its ack; None when none came."""
        with self._lock:
            if self._sock is None or self._pid != os.getpid():
                return None  # a new connection holds none of this invoke's items
            give_up_at = time.monotonic() + timeout_s
            try:
                self._write_locked(wire.encode(end), give_up_at)
                return self._await_ack_locked(end.request_id, give_up_at)
            except (OSError, wire.FrameDecodeError):
                self._close_locked()
                return None

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _write_locked(self, frame: bytes, give_up_at: Optional[float]) -> None:
        """Write all of ``frame``: one non-blocking send when the socket's buffer has room (the
        hot path: the same single syscall as a blocking ``sendall``), else wait for room, at
        most SEND_STALL_S without progress and never past ``give_up_at``."""
        sock = self._sock
        assert sock is not None
        try:
            sent = sock.send(frame, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent == len(frame):
            return
        view = memoryview(frame)[sent:]
        writable = select.poll()
        writable.register(sock, select.POLLOUT)
        while view:
            wait = SEND_STALL_S if give_up_at is None else min(SEND_STALL_S, give_up_at - time.monotonic())
            if not writable.poll(max(0.0, wait) * 1000):
                raise ChannelStalled(f"no confirmation from the extension on {self.path}: it read "
                                     f"nothing for {max(0.0, wait):.2f}s (the socket's buffer is full: it hangs)")
            try:
                sent = sock.send(view, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                sent = 0
            view = view[sent:]

    def _await_welcome_locked(self, give_up_at: Optional[float]) -> None:
        """Wait (bounded) for the reader's answer to the hello: until it came, the reader may
        still close this connection unread (one past its cap)."""
        sock, poller = self._sock, self._poller
        assert sock is not None and poller is not None
        until = time.monotonic() + WELCOME_TIMEOUT_S
        if give_up_at is not None:
            until = min(until, give_up_at)
        try:
            while not self._welcomed:
                left = until - time.monotonic()
                if not poller.poll(max(0.0, left) * 1000):
                    if left <= 0:
                        raise ChannelStalled(f"no confirmation from the extension on {self.path}: it did "
                                             "not answer the connection in time (it hangs, or is busy)")
                    continue
                try:
                    data = sock.recv(65536, socket.MSG_DONTWAIT)
                except (BlockingIOError, InterruptedError):
                    continue
                if not data:
                    raise ChannelUnavailable(f"the defer-runner extension on {self.path} closed the "
                                             "connection unread (past its connection cap)")
                self._take_replies(data)
        except ChannelUnavailable:
            self._close_locked()
            raise
        except (OSError, wire.FrameDecodeError) as exc:
            self._close_locked()
            raise ChannelUnavailable(f"defer-runner socket {self.path} broke: {exc}") from exc

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
            self._welcomed = True  # any answer: the reader took this connection
            if isinstance(frame, wire.Backlog):
                self.backlogged = frame.over
            else:
                frames.append(frame)
        return frames

    def _hello(self) -> wire.Hello:
        return wire.Hello(pid=os.getpid(), wrapped=self._wrapped, posts=self._posts)

    def _connect_locked(self) -> None:
        self._close_locked()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # A burst of deferrals should land in the kernel buffer, not wait on the reader.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            sock.settimeout(CONNECT_TIMEOUT_S)  # a full accept backlog must not hang the handler
            sock.connect(self.path)
            sock.settimeout(None)
            sock.sendall(wire.encode(self._hello()))  # an empty buffer takes it at once
        except OSError as exc:
            sock.close()
            if isinstance(exc, socket.timeout):  # its accept queue is full: a reader that hangs
                raise ChannelStalled(f"no confirmation from the extension on {self.path}: it accepts "
                                     "no connection (it hangs)") from exc
            raise ChannelUnavailable(f"no defer-runner listening on {self.path}: {exc}") from exc
        self._sock = sock
        self.connection += 1
        self._pid = os.getpid()
        self._replies = wire.FrameReader()
        self._welcomed = False
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
        self._wrapped = self._posts = False
        if self._sock is not None:
            try:
                self._sock.close()  # the child's copy of the descriptor; the parent's stays open
            except OSError:
                pass
        self._sock = None
        self._pid = 0
        self._poller = None
        self._replies = wire.FrameReader()
        self._welcomed = False


_CHANNELS: "weakref.WeakSet[SocketChannel]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for channel in list(_CHANNELS):
        channel._forget_parent()


os.register_at_fork(after_in_child=_after_fork_in_child)
