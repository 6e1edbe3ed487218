"""The channel without a socket, for unit tests of the engine and the drivers.

A test opens peers and sends frames; each frame is encoded and decoded as on the socket and
goes through the socket reader's own routing (``channel.route``), so the runner sees what it
would see from a real function process, with no socket, thread or timing in between.
"""

from __future__ import annotations

from typing import List, Optional

from handler_lib import wire
from handler_lib.handoff import InvokeReceipts, LooseReceipts

from .channel import ChannelHandlers, Reply, closed, route


class MemoryPeer:
    """One function process on the in-memory channel."""

    def __init__(self) -> None:
        self.hello: Optional[wire.Hello] = None
        self.receipts = InvokeReceipts()
        self.loose = LooseReceipts()
        self.replies: List[Reply] = []


class MemoryChannel:
    def __init__(self) -> None:
        self._handlers: Optional[ChannelHandlers] = None
        self.peers: List[MemoryPeer] = []

    def start(self, handlers: ChannelHandlers) -> None:
        self._handlers = handlers

    def connect(self, wrapped: bool = True, posts: Optional[bool] = None) -> MemoryPeer:
        """A new process connects and says hello (``wrapped``: it has a ``@defer`` handler;
        ``posts``: it reports every invoke's end, as under awslambdaric; by default, if wrapped)."""
        peer = MemoryPeer()
        self.peers.append(peer)
        self.send(peer, wire.Hello(pid=len(self.peers), wrapped=wrapped, posts=wrapped if posts is None else posts))
        return peer

    def send(self, peer: MemoryPeer, frame: wire.Frame) -> Optional[Reply]:
        """Hand ``frame`` over as the socket would; return the ack it was answered with."""
        assert self._handlers is not None, "start() the channel first"
        body = wire.encode(frame)[wire.HEADER.size:]
        reply = route(peer, wire.decode(body), body, self._handlers)
        if reply is not None:
            peer.replies.append(reply)
        return reply

    def close(self, peer: MemoryPeer) -> None:
        assert self._handlers is not None
        self.peers.remove(peer)
        closed(peer, self._handlers)

    def sync(self, timeout: float = 1.0) -> bool:
        return True  # nothing is ever waiting: send() delivers at once

    def recheck_backlog(self) -> None:
        return None
