"""Where an item goes once built: the extension's socket, a capture list, or inline delivery.

One dispatcher per process. The mode is decided from the environment on first use (not at
import, so tests and scripts can set ``DEFER_MODE`` first):

- the socket when the defer-runner extension listens (``auto``/``extension``);
- inline delivery after the handler returns, with one warning, when it does not (``auto``),
  or always (``inline``): work is late, never lost;
- a capture list inside ``handler_lib.testing.capture()``;
- the extension's own queue when the code runs inside the extension (a task deferring more).
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Callable, List, Optional

from . import config as _config
from . import wire
from ._channel import ChannelUnavailable, SocketChannel

LocalSink = Callable[[wire.WorkItem], None]


class ExtensionUnavailableError(ConnectionError):
    """``DEFER_MODE=extension`` but no defer-runner extension is listening."""


class Dispatcher:
    def __init__(self) -> None:
        self._config: Optional[_config.Config] = None
        self._channel: Optional[SocketChannel] = None
        self._wrapped = False
        self._warned = False
        self.request_id = ""
        self._in_invoke = False
        self._sent = 0
        self._inline: List[wire.WorkItem] = []
        self._lock = threading.Lock()
        self.capture: Optional[List[wire.WorkItem]] = None
        self.local_sink: Optional[LocalSink] = None

    # -- set-up -------------------------------------------------------------------------
    @property
    def config(self) -> _config.Config:
        if self._config is None:
            self._config = _config.load()
        return self._config

    def reset(self) -> None:
        """Forget the mode and connection (tests that change the environment)."""
        if self._channel is not None:
            self._channel.close()
        self.__init__()  # type: ignore[misc]

    def wrapped_handler(self) -> None:
        """Called once when ``@defer`` wraps the handler, at import: dial the extension early."""
        self._wrapped = True
        if self._channel is not None:
            self._channel.mark_wrapped()
        elif self._uses_socket():
            self._try_connect()

    def _uses_socket(self) -> bool:
        return self.config.mode != "inline" and not os.environ.get(_config.ENV_IN_RUNNER)

    def _try_connect(self) -> bool:
        channel = SocketChannel(self.config.socket_path, wrapped=self._wrapped)
        try:
            channel.connect()
        except ChannelUnavailable:
            return False
        self._channel = channel
        return True

    # -- the invoke ---------------------------------------------------------------------
    def begin(self, request_id: str) -> None:
        self.request_id = request_id
        self._in_invoke = True
        self._sent = 0
        if self._channel is None and self._uses_socket() and self.local_sink is None:
            self._try_connect()

    def end(self, request_id: str) -> None:
        """End-of-invoke: tell the extension how many items this invoke sent, then run inline work."""
        self._in_invoke = False
        if self._channel is not None and self.capture is None and self.local_sink is None:
            try:
                self._channel.send(wire.encode(wire.EndOfInvoke(request_id, self._sent)))
            except ChannelUnavailable:
                warnings.warn("lambda-defer: could not send the end-of-invoke marker; the extension "
                              "waits for its deadline before draining", RuntimeWarning, stacklevel=3)
        self.request_id = ""
        self._flush_inline()

    # -- the hot path -------------------------------------------------------------------
    def submit(self, item: wire.WorkItem) -> str:
        frame = wire.encode(item)  # raises TypeError/ValueError before anything is queued
        if self.capture is not None:
            self.capture.append(item)
            return item.id
        if self.local_sink is not None:
            self.local_sink(item)
            return item.id
        channel = self._channel
        if channel is None and self._uses_socket() and self._try_connect():
            channel = self._channel
        if channel is not None:
            try:
                channel.send(frame)
                self._sent += 1
                return item.id
            except ChannelUnavailable as exc:
                self._channel = None
                if self.config.mode == "extension":
                    raise ExtensionUnavailableError(str(exc)) from exc
        elif self.config.mode == "extension" and self._uses_socket():
            raise ExtensionUnavailableError(
                f"DEFER_MODE=extension but no defer-runner listens on {self.config.socket_path}; "
                "attach the layer or set DEFER_MODE=auto")
        self._go_inline(item)
        return item.id

    def _go_inline(self, item: wire.WorkItem) -> None:
        if self.config.mode != "inline" and not self._warned:
            self._warned = True
            warnings.warn(f"lambda-defer: no defer-runner extension on {self.config.socket_path}; "
                          "deferred work runs inline after the handler returns", RuntimeWarning, stacklevel=4)
        with self._lock:
            self._inline.append(item)
        if not self._in_invoke:
            self._flush_inline()

    def _flush_inline(self) -> None:
        with self._lock:
            items, self._inline = self._inline, []
        if items:
            from ._inline import deliver_inline  # boto3 is loaded only when work runs inline

            deliver_inline(items)


DISPATCHER = Dispatcher()
