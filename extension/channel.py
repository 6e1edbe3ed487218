"""The extension side of the unix-socket channel: accept, read frames, hand them over, answer.

One reader thread multiplexes every connection with ``selectors``. ``sync()`` lets the main
thread make sure that everything the function wrote before now has been read, which is
what makes "has the handler said it is done?" a question with a definite answer.

A frame that cannot be decoded costs only itself: it is logged, counted and skipped, and
the frames behind it are read as usual (the handler learns from the ``ack`` which of its
items were not taken and delivers those itself). Only a length that no valid frame can
have drops the connection, because after it the stream cannot be split any more.

The reader protects the environment from a flood of connections: at most
``max_connections`` are kept (more are accepted and closed at once, so the caller fails
fast and delivers inline), ``accept`` failing for want of file descriptors backs off
instead of spinning, and half-sent frames are bounded in total bytes and in idle time.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import selectors
import socket
import threading
import time
from typing import Callable, Dict, List, Optional, Protocol, Tuple, Union

import msgpack

from handler_lib import wire
from handler_lib.handoff import HandBack, InvokeReceipts, LooseReceipts

log = logging.getLogger("defer_runner.channel")

READ_CHUNK = 256 * 1024
#: Bytes held in half-received frames, all connections together, before the stalest goes.
HALF_FRAME_BUDGET_BYTES = 32 * 1024 * 1024
#: A connection that sent part of a frame and then nothing for this long is dropped.
HALF_FRAME_IDLE_S = 30.0
#: Replies (acks, backlog notices) a peer may leave unread before it is dropped.
MAX_OUTBOX_BYTES = 64 * 1024
ACCEPT_BACKOFF_S = (0.05, 1.0)
_FD_STARVED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
#: Bad frames logged one by one per connection; the rest are only counted.
LOGGED_BAD_FRAMES = 10


def default_max_connections() -> int:
    """A quarter of the file-descriptor limit, at most 256: the sinks need descriptors too."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 256
    return max(8, min(256, soft // 4))


class Connection:
    """One function process's connection. A plain class: ``dataclasses`` (and the ``inspect``
    it imports) would cost 4 ms of CPU before the extension is ready."""

    __slots__ = ("sock", "reader", "hello", "last_data", "bad_frames", "outbox", "receipts", "loose")

    def __init__(self, sock: socket.socket, last_data: float = 0.0) -> None:
        self.sock = sock
        self.reader = wire.FrameReader()
        self.hello: Optional[wire.Hello] = None
        self.last_data = last_data
        self.bad_frames = 0
        self.outbox = bytearray()
        # the ids received per invoke open on this connection, until its end marker (handoff.InvokeReceipts)
        self.receipts = InvokeReceipts()
        # items sent outside any invoke (no request id) by a @defer process, until the end
        # marker with no request id that confirms them (handoff.LooseReceipts)
        self.loose = LooseReceipts()


class Peer(Protocol):
    """One process on the channel, as the routing sees it."""

    hello: Optional[wire.Hello]
    receipts: InvokeReceipts
    loose: LooseReceipts


#: What the reader answers a frame with: the ack of an end marker, the backlog state for a hello.
Reply = Union[wire.Ack, wire.Backlog]


class Reader(Protocol):
    """What the drivers ask of the channel: read what is waiting, and re-say the backlog state.
    The socket's reader (``ChannelServer``) and the in-memory channel both do it."""

    def sync(self, timeout: float = 1.0) -> bool: ...

    def recheck_backlog(self) -> None: ...


class ChannelHandlers:
    """What the reader calls, and when (a plain class, as ``Connection``)."""

    __slots__ = ("on_item", "on_end", "on_hello", "on_close", "on_after", "backlogged", "hand_back")

    def __init__(self, on_item: Callable[[wire.WorkItem, bytes], Optional[Tuple[str, bool]]],
                 on_end: Callable[[wire.EndOfInvoke], Optional[wire.Ack]],
                 on_hello: Callable[[Peer, wire.Hello], None],
                 on_close: Callable[[Peer], None],
                 on_after: Callable[[wire.AfterResponse], None] = lambda after: None,
                 backlogged: Callable[[], bool] = lambda: False,
                 hand_back: Optional[HandBack] = None) -> None:
        # the item and its encoded map; returns the key it is held under and whether it is
        # journaled (None: under its id, journaled)
        self.on_item = on_item
        # an end marker with a request id arrived; the routing answers it with the ack it makes
        # from the connection's receipts (a value returned here is not used)
        self.on_end = on_end
        self.on_hello = on_hello  # called before peer.hello is updated
        self.on_close = on_close
        self.on_after = on_after
        self.backlogged = backlogged
        # at an end marker: which of the items it covers are not held durably (handoff.HandBack);
        # None: every item received counts as held
        self.hand_back = hand_back


class ChannelServer:
    """Reads from a socket bound beforehand by :func:`extension.listener.listen`."""

    def __init__(self, path: str, listener: socket.socket, *,
                 max_connections: Optional[int] = None) -> None:
        self.path = path
        self._listener = listener
        self._selector = selectors.DefaultSelector()
        self._conns: Dict[int, Connection] = {}
        self._wake_r, self._wake_w = os.pipe()
        # Non-blocking: a nested pump may already have read what an outer select reported.
        os.set_blocking(self._wake_r, False)
        self._sync_lock = threading.Lock()
        self._synced = threading.Event()
        self._handlers: Optional[ChannelHandlers] = None
        self._thread: Optional[threading.Thread] = None
        self.max_connections = max_connections or default_max_connections()
        self._accept_paused_until = 0.0
        self._accept_backoff = ACCEPT_BACKOFF_S[0]
        self._refused_connections = 0
        self._half_bytes = 0
        self._backlogged = False
        self._pumping = False
        self._sync_pending = False
        self.bad_frames = 0  # frames skipped because they could not be decoded

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

    def recheck_backlog(self) -> None:
        """Ask the reader to tell the handlers if the queue went back under its bound."""
        os.write(self._wake_w, b"b")

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    # -- the reader thread --------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            for key, events in self._selector.select(self._select_timeout()):
                self._handle(key, events)
            self._housekeeping()
            if self._sync_pending:
                self._pump_readable()
                self._sync_pending = False
                self._synced.set()

    def _select_timeout(self) -> Optional[float]:
        waits = []
        if self._accept_paused_until:
            waits.append(self._accept_paused_until - time.monotonic())
        if self._half_bytes:
            waits.append(1.0)
        return max(0.0, min(waits)) if waits else None

    def _pump_readable(self, skip: Optional[Connection] = None) -> None:
        """Handle everything already readable (never blocks, never nests)."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while True:
                ready = [(k, e) for k, e in self._selector.select(0) if k.data is not skip]
                if not ready:
                    return
                for key, events in ready:
                    self._handle(key, events)
        finally:
            self._pumping = False

    def _handle(self, key: selectors.SelectorKey, events: int) -> None:
        try:
            if key.data == "wake":
                self._read_wake()
                return
            if key.data == "accept":
                self._accept()
                return
            conn = key.data
            if events & selectors.EVENT_WRITE:
                self._flush(conn)
            if events & selectors.EVENT_READ and conn.sock.fileno() in self._conns:
                self._read(conn)
        except Exception:  # noqa: BLE001 - the reader must outlive any one bad connection
            log.exception("channel reader error")

    def _read_wake(self) -> None:
        try:
            data = os.read(self._wake_r, 4096)
        except BlockingIOError:
            return
        if b"b" in data:
            self._update_backlog()
        if b"s" in data:
            self._sync_pending = True

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno not in _FD_STARVED:
                    raise
                self._pause_accepting(exc)
                return
            self._accept_backoff = ACCEPT_BACKOFF_S[0]
            if len(self._conns) >= self.max_connections:
                self._refuse(sock)
                continue
            sock.setblocking(False)
            conn = Connection(sock, last_data=time.monotonic())
            self._conns[sock.fileno()] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)
            if self._backlogged:
                self._reply(conn, wire.Backlog(True))

    def _refuse(self, sock: socket.socket) -> None:
        self._refused_connections += 1
        if self._refused_connections == 1 or self._refused_connections % 1000 == 0:
            log.warning("refusing connections past the cap of %d; their items go inline",
                        self.max_connections, extra={"refused": self._refused_connections})
        sock.close()

    def _pause_accepting(self, exc: OSError) -> None:
        """Out of descriptors: stop polling the listener for a while instead of spinning on it."""
        if self._accept_paused_until:
            return
        delay = self._accept_backoff
        self._accept_backoff = min(ACCEPT_BACKOFF_S[1], delay * 2)
        log.error("cannot accept connections (%s); retrying in %.2fs", exc.strerror, delay,
                  extra={"connections": len(self._conns)})
        self._selector.unregister(self._listener)
        self._accept_paused_until = time.monotonic() + delay

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self._accept_paused_until and now >= self._accept_paused_until:
            self._accept_paused_until = 0.0
            self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        if self._half_bytes:
            for conn in [c for c in self._conns.values() if c.reader.buffered]:
                if now - conn.last_data >= HALF_FRAME_IDLE_S:
                    log.error("dropping a connection that sent %d bytes of a frame and then nothing for %.0fs",
                              conn.reader.buffered, HALF_FRAME_IDLE_S)
                    self._drop(conn)

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
        conn.last_data = time.monotonic()
        before = conn.reader.buffered
        try:
            bodies = conn.reader.feed(data)
        except wire.FrameDecodeError as exc:
            log.error("dropping a connection whose stream cannot be split into frames: %s", exc)
            self._drop(conn, buffered=before)
            return
        self._half_bytes += conn.reader.buffered - before
        for body in bodies:
            try:
                frame = wire.decode(body)
            except wire.FrameDecodeError as exc:
                self._skip(conn, body, exc)
                continue
            self._deliver(conn, frame, body)
        if self._half_bytes > HALF_FRAME_BUDGET_BYTES:
            self._shed_half_frames()
        self._update_backlog()

    def _skip(self, conn: Connection, body: bytes, exc: Exception) -> None:
        self.bad_frames += 1
        conn.bad_frames += 1
        if conn.bad_frames <= LOGGED_BAD_FRAMES:
            log.error("skipped a frame that cannot be decoded: %s", exc, extra=_frame_hint(body))
        elif conn.bad_frames == LOGGED_BAD_FRAMES + 1:
            log.error("more undecodable frames on this connection; counting them without logging each")

    def _shed_half_frames(self) -> None:
        """Drop the stalest senders of half frames until the total is within the budget."""
        partial = sorted((c for c in self._conns.values() if c.reader.buffered), key=lambda c: c.last_data)
        for conn in partial:
            if self._half_bytes <= HALF_FRAME_BUDGET_BYTES:
                return
            log.error("dropping a connection holding %d bytes of an unfinished frame: half-sent frames "
                      "exceed %d bytes in all", conn.reader.buffered, HALF_FRAME_BUDGET_BYTES)
            self._drop(conn)

    def _deliver(self, conn: Connection, frame: wire.Frame, body: bytes) -> None:
        handlers = self._handlers
        assert handlers is not None
        if isinstance(frame, (wire.Ack, wire.Backlog)):
            self._skip(conn, b"", wire.FrameDecodeError(f"a {frame.kind} frame goes to the handler, not to us"))
            return
        if isinstance(frame, wire.EndOfInvoke) and frame.request_id:
            # Items of this invoke may sit on another connection (the handler reconnected):
            # read those first, so the drain this marker starts finds them queued (the ack
            # counts only what came over this connection; the handler delivers the others).
            self._pump_readable(skip=conn)
        reply = route(conn, frame, body, handlers)
        if reply is not None:
            self._reply(conn, reply)

    # -- replies ------------------------------------------------------------------------
    def _update_backlog(self) -> None:
        handlers = self._handlers
        over = bool(handlers and handlers.backlogged())
        if over == self._backlogged:
            return
        self._backlogged = over
        log.warning("queue %s its memory bound: handlers %s", "over" if over else "back under",
                    "deliver new items themselves" if over else "send to the extension again")
        for conn in list(self._conns.values()):
            self._reply(conn, wire.Backlog(over))

    def _reply(self, conn: Connection, frame: wire.Frame) -> None:
        conn.outbox += wire.encode(frame)
        self._flush(conn)

    def _flush(self, conn: Connection) -> None:
        try:
            sent = conn.sock.send(conn.outbox) if conn.outbox else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(conn)
            return
        del conn.outbox[:sent]
        if len(conn.outbox) > MAX_OUTBOX_BYTES:
            log.error("dropping a connection that does not read its replies")
            self._drop(conn)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbox else 0)
        try:
            self._selector.modify(conn.sock, events, conn)
        except (KeyError, ValueError):
            pass

    def _drop(self, conn: Connection, buffered: Optional[int] = None) -> None:
        if self._conns.pop(conn.sock.fileno(), None) is None:
            return
        self._half_bytes -= conn.reader.buffered if buffered is None else buffered
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        if conn.bad_frames > LOGGED_BAD_FRAMES:
            log.error("connection closed after %d undecodable frames", conn.bad_frames)
        if self._handlers is not None:
            closed(conn, self._handlers)

    def close(self) -> None:
        for conn in list(self._conns.values()):
            conn.sock.close()
        if self._listener is not None:
            self._listener.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def _frame_hint(body: bytes) -> Dict[str, object]:
    """What can still be read of a bad frame (kind, id, request id), for its log line."""
    try:
        payload = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception:  # noqa: BLE001 - not even msgpack: nothing to report but the size
        return {"frame_bytes": len(body)}
    if not isinstance(payload, dict):
        return {"frame_bytes": len(body)}
    hint: Dict[str, object] = {"frame_bytes": len(body)}
    for key, name in (("k", "kind"), ("id", "item_id"), ("rid", "request_id")):
        if isinstance(payload.get(key), str):
            hint[name] = payload[key]
    return hint


def route(peer: Peer, frame: wire.Frame, body: bytes, handlers: ChannelHandlers) -> Optional[Reply]:
    """What one frame from ``peer`` does, and what it is answered with, if anything: the one
    routing of the socket's reader and of the in-memory channel the tests drive the drivers with."""
    if isinstance(frame, wire.Hello):
        handlers.on_hello(peer, frame)
        peer.hello = frame
        # The answer says this connection is read (one past the cap is closed unread): the
        # function sends nothing else before it. It carries the backlog state.
        return wire.Backlog(handlers.backlogged())
    if isinstance(frame, wire.EndOfInvoke):
        if not frame.request_id:  # what this process sent outside an invoke
            return peer.loose.confirm(frame, handlers.hand_back)
        ack = peer.receipts.confirm(frame, handlers.hand_back)  # only what came over this connection counts
        if ack.count < frame.count:
            log.warning("the handler sent %d items, the extension holds %d; it delivers the others itself",
                        frame.count, ack.count, extra={"request_id": frame.request_id})
        handlers.on_end(frame)
        return ack
    if isinstance(frame, wire.AfterResponse):
        handlers.on_after(frame)
        return None
    if isinstance(frame, (wire.Ack, wire.Backlog)):
        raise wire.FrameDecodeError(f"a {frame.kind} frame goes to the handler, not to us")
    key, journaled = handlers.on_item(frame, body) or (frame.id, True)
    if frame.request_id:
        peer.receipts.received(frame, key)
    else:  # counted from the start: a @defer handler may be defined later
        peer.loose.received(frame.id, key, journaled, keep_id=peer.hello is not None and peer.hello.wrapped)
    return None


def closed(peer: Peer, handlers: ChannelHandlers) -> None:
    """``peer``'s connection is gone: its receipts go with it (nothing can confirm them now)."""
    peer.receipts.clear()
    handlers.on_close(peer)
