"""Buffered delivery of telemetry to subscribed extensions, paused while frozen.

Each subscriber has its own buffer and thread. A batch is POSTed (a JSON array) when it
reaches maxItems or maxBytes, or when its oldest event is timeoutMs old. Delivery is
paused before the sandbox freezes (an in-flight POST is allowed to finish) and resumed
after the thaw, so like in Lambda `platform.report(N)` usually arrives after the thaw
for invoke N+1. Failed deliveries are retried with backoff, as Lambda does.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, List, Tuple

from .events import TelemetryEvent
from .telemetry import Subscription

__all__ = ["TelemetryHub"]

_BACKLOG_LIMIT = 2000
_POST_TIMEOUT_S = 2.0


class _Subscriber:
    def __init__(self, name: str, subscription: Subscription, log: Callable[[str], None]) -> None:
        self.name = name
        self.sub = subscription
        self._log = log
        self._buffer: Deque[Tuple[float, bytes]] = deque()
        self._cond = threading.Condition()
        self._paused = False
        self._inflight = False
        self._flush = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"telemetry:{name}", daemon=True)
        self._thread.start()

    def push(self, event: TelemetryEvent) -> None:
        if event.category not in self.sub.types:
            return
        with self._cond:
            self._buffer.append((time.monotonic(), json.dumps(event.to_dict(self.sub.schema_version)).encode()))
            self._cond.notify_all()

    def _ready(self) -> bool:
        if self._paused or not self._buffer:
            return False
        buffering = self.sub.buffering
        if self._flush or len(self._buffer) >= buffering.max_items:
            return True
        if sum(len(item) for _, item in self._buffer) >= buffering.max_bytes:
            return True
        return time.monotonic() - self._buffer[0][0] >= buffering.timeout_ms / 1000

    def _take(self) -> List[bytes]:
        batch: List[bytes] = []
        size = 0
        while self._buffer and len(batch) < self.sub.buffering.max_items:
            item = self._buffer[0][1]
            if batch and size + len(item) > self.sub.buffering.max_bytes:
                break
            batch.append(self._buffer.popleft()[1])
            size += len(item)
        if not self._buffer:
            self._flush = False
        return batch

    def _run(self) -> None:
        backoff = 0.05
        while True:
            with self._cond:
                while not self._closed and not self._ready():
                    wait = None
                    if self._buffer and not self._paused:
                        age = time.monotonic() - self._buffer[0][0]
                        wait = max(0.001, self.sub.buffering.timeout_ms / 1000 - age)
                    self._cond.wait(wait)
                if self._closed:
                    return
                batch = self._take()
                self._inflight = True
            delivered = self._post(batch)
            with self._cond:
                self._inflight = False
                if not delivered:
                    now = time.monotonic()
                    self._buffer.extendleft((now, item) for item in reversed(batch))
                self._cond.notify_all()
                if not delivered:
                    self._cond.wait(backoff)
                    backoff = min(backoff * 2, 1.0)
                else:
                    backoff = 0.05

    def _post(self, batch: List[bytes]) -> bool:
        body = b"[" + b",".join(batch) + b"]"
        conn = http.client.HTTPConnection(self.sub.host, self.sub.port, timeout=_POST_TIMEOUT_S)
        try:
            conn.request("POST", self.sub.path, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            return response.status < 300
        except OSError:
            return False
        finally:
            conn.close()

    def pause(self, timeout: float) -> None:
        with self._cond:
            self._paused = True
            self._cond.wait_for(lambda: not self._inflight, timeout)

    def resume(self, flush: bool = False) -> None:
        with self._cond:
            self._paused = False
            self._flush = self._flush or flush
            self._cond.notify_all()

    def drain(self, timeout: float) -> None:
        """Deliver everything buffered now (used before SHUTDOWN); bounded by `timeout`."""
        with self._cond:
            self._flush = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._closed or (not self._buffer and not self._inflight), timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class TelemetryHub:
    """All subscribers of one execution environment; events emitted before a subscription
    (during init) are replayed to it, so `platform.initStart` is not missed."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._subscribers: Dict[str, _Subscriber] = {}
        self._backlog: Deque[TelemetryEvent] = deque(maxlen=_BACKLOG_LIMIT)
        self._paused = False

    def subscribe(self, name: str, subscription: Subscription) -> None:
        with self._lock:
            old = self._subscribers.pop(name, None)
            if old is not None:
                old.close()
            subscriber = _Subscriber(name, subscription, self._log)
            if self._paused:
                subscriber.pause(0)
            for event in self._backlog:
                subscriber.push(event)
            self._subscribers[name] = subscriber

    def emit(self, event: TelemetryEvent) -> None:
        with self._lock:
            self._backlog.append(event)
            subscribers = list(self._subscribers.values())
        for subscriber in subscribers:
            subscriber.push(event)

    def end_backlog(self) -> None:
        """Init is over: no new subscriptions, so stop keeping events for replay."""
        with self._lock:
            self._backlog = deque(maxlen=0)

    def _each(self) -> List[_Subscriber]:
        with self._lock:
            return list(self._subscribers.values())

    def pause(self, timeout: float = 1.0) -> None:
        with self._lock:
            self._paused = True
        for subscriber in self._each():
            subscriber.pause(timeout)

    def resume(self) -> None:
        with self._lock:
            self._paused = False
        for subscriber in self._each():
            subscriber.resume()

    def drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for subscriber in self._each():
            subscriber.drain(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        with self._lock:
            subscribers = list(self._subscribers.values())
            self._subscribers.clear()
        for subscriber in subscribers:
            subscriber.close()
