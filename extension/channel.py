"""The extension side of the unix-socket channel: accept, read frames, hand them over.

One reader thread multiplexes every connection with ``selectors``. ``sync()`` lets the main
thread make sure that everything the function wrote before now has been read, which is
what makes "has the handler said it is done?" a question with a definite answer.
A connection that sends a bad or oversize frame is dropped; other connections go on.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

from handler_lib import wire

log = logging.getLogger("defer_runner.channel")

READ_CHUNK = 256 * 1024


@dataclass
class Connection:
    sock: socket.socket
    reader: wire.FrameReader = field(default_factory=wire.FrameReader)
    hello: Optional[wire.Hello] = None


@dataclass
class ChannelHandlers:
    on_item: Callable[[wire.WorkItem], None]
    on_end: Callable[[wire.EndOfInvoke], None]
    on_hello: Callable[[Connection, wire.Hello], None]  # called before conn.hello is updated
    on_close: Callable[[Connection], None]


class ChannelServer:
    """Reads from a socket bound beforehand by :func:`extension.listener.listen`."""

    def __init__(self, path: str, listener: socket.socket) -> None:
        self.path = path
        self._listener: Optional[socket.socket] = listener
        self._selector = selectors.DefaultSelector()
        self._conns: Dict[int, Connection] = {}
        self._wake_r, self._wake_w = os.pipe()
        self._sync_lock = threading.Lock()
        self._synced = threading.Event()
        self._handlers: Optional[ChannelHandlers] = None
        self._thread: Optional[threading.Thread] = None

    def start(self, handlers: ChannelHandlers) -> None:
        """Start reading; frames that arrived since the socket was bound wait in the kernel."""
        self._handlers = handlers
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._loop, name="defer-channel", daemon=True)
        self._thread.start()

    def sync(self, timeout: float = 1.0) -> bool:
        """Return once every byte written to the socket before this call has been handled."""
        with self._sync_lock:
            self._synced.clear()
            os.write(self._wake_w, b"s")
            return self._synced.wait(timeout)

    # -- the reader thread --------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            sync_requested = False
            for key, _ in self._selector.select():
                sync_requested |= self._handle(key)
            if sync_requested:
                while True:  # drain everything already readable, then answer
                    ready = self._selector.select(0)
                    if not ready:
                        break
                    for key, _ in ready:
                        self._handle(key)
                self._synced.set()

    def _handle(self, key: selectors.SelectorKey) -> bool:
        try:
            if key.data == "wake":
                os.read(self._wake_r, 4096)
                return True
            if key.data == "accept":
                self._accept()
            else:
                self._read(key.data)
        except Exception:  # noqa: BLE001 - the reader must outlive any one bad connection
            log.exception("channel reader error")
        return False

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            conn = Connection(sock)
            self._conns[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        try:
            bodies = conn.reader.feed(data)
            for body in bodies:
                self._deliver(conn, wire.decode(body))
        except wire.FrameDecodeError as exc:
            log.error("dropping connection after a bad frame: %s", exc)
            self._drop(conn)

    def _deliver(self, conn: Connection, frame: wire.Frame) -> None:
        handlers = self._handlers
        assert handlers is not None
        if isinstance(frame, wire.Hello):
            handlers.on_hello(conn, frame)
            conn.hello = frame
        elif isinstance(frame, wire.EndOfInvoke):
            handlers.on_end(frame)
        else:
            handlers.on_item(frame)

    def _drop(self, conn: Connection) -> None:
        self._conns.pop(conn.sock.fileno(), None)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        if self._handlers is not None:
            self._handlers.on_close(conn)

    def close(self) -> None:
        for conn in list(self._conns.values()):
            conn.sock.close()
        if self._listener is not None:
            self._listener.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
