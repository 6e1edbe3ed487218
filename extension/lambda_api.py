"""The Lambda Extensions API (2020-01-01) as typed requests and events.

Only a registered extension can ask for events or report errors, so those calls live on
``RegisteredExtension``. ``next`` never has a timeout: an extension is suspended inside it
for as long as the environment is frozen.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from .http11 import MalformedMessage, Reader

API_VERSION = "2020-01-01"
TELEMETRY_VERSION = "2022-07-01"
NAME_HEADER = "Lambda-Extension-Name"
ID_HEADER = "Lambda-Extension-Identifier"
ERROR_TYPE_HEADER = "Lambda-Extension-Function-Error-Type"

# Error types we report through init/error and exit/error.
ERR_CONFIG = "Extension.ConfigError"
ERR_INIT = "Extension.InitError"
ERR_SOCKET = "Extension.SocketError"
#: An event or reply larger than this is refused (an invoke event is a few hundred bytes).
MAX_REPLY_BYTES = 16 * 1024 * 1024


class ExtensionsApiError(RuntimeError):
    """The Extensions API answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"Extensions API answered {status}: {body[:500]}")
        self.status = status


class UnreadableEvent(ValueError):
    """``next`` answered with an event this extension cannot read (a new ``eventType``, say)."""


class InvokeEvent(NamedTuple):
    request_id: str
    deadline_ms: int
    invoked_function_arn: str = ""
    tracing: Optional[Dict[str, Any]] = None


class ShutdownEvent(NamedTuple):
    reason: str  # lower-cased: spindown, timeout, failure, sandboxterminated, releasefail...
    deadline_ms: int

    @property
    def is_reset(self) -> bool:
        """A reset keeps /tmp and re-inits this environment: the journal will be replayed."""
        return self.reason in ("timeout", "failure", "releasefail")


NextEvent = Union[InvokeEvent, ShutdownEvent]


def parse_event(payload: Dict[str, Any]) -> NextEvent:
    kind = str(payload.get("eventType", "")).upper()
    if kind == "INVOKE":
        return InvokeEvent(request_id=str(payload.get("requestId", "")),
                           deadline_ms=int(payload.get("deadlineMs", 0)),
                           invoked_function_arn=str(payload.get("invokedFunctionArn", "")),
                           tracing=payload.get("tracing"))
    if kind == "SHUTDOWN":
        return ShutdownEvent(reason=str(payload.get("shutdownReason", "")).lower(),
                             deadline_ms=int(payload.get("deadlineMs", 0)))
    raise ValueError(f"unknown event type {payload.get('eventType')!r}")


#: (status, headers, body) of an HTTP reply.
Reply = Tuple[int, Dict[str, str], bytes]


def raw_request(address: str, method: str, path: str, body: bytes, headers: Dict[str, str]) -> Reply:
    """One HTTP/1.1 exchange over a new connection, closed after it (``register``)."""
    with _connect(address) as sock:
        sock.sendall(_request_bytes(address, method, path, body, {**headers, "Connection": "close"}))
        status, reply_headers, reply, _ = _read_reply(Reader(sock), method)
    return status, reply_headers, reply


def _connect(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    # timeout=None, not the process's default: a task module's socket.setdefaulttimeout() must
    # not put a timeout on next (an idle environment waits there without end).
    return socket.create_connection((host or "127.0.0.1", int(port)), timeout=None)


def _request_bytes(address: str, method: str, path: str, body: Optional[bytes], headers: Dict[str, str]) -> bytes:
    payload = body or b""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {len(payload)}\r\n"
            f"{head}\r\n").encode("latin-1") + payload


def _read_reply(reader: Reader, method: str) -> Tuple[int, Dict[str, str], bytes, bool]:
    """(status, headers by lower-case name, body, whether the server closes the connection).

    A connection closed before the status line raises ConnectionResetError (a keep-alive the
    peer had closed: the caller may send again on a new one); anything unreadable ValueError.
    """
    while True:  # interim replies (1xx but 101) precede the reply itself: skipped, as http.client does
        head = reader.head()
        if head is None:
            raise ConnectionResetError("the Extensions API closed the connection without a reply")
        start, headers = head
        if len(start) < 2 or not start[0].startswith("HTTP/1.") or not (start[1].isascii() and start[1].isdigit()):
            raise MalformedMessage(502, f"not an HTTP reply: {' '.join(start)[:100]!r}")
        status = int(start[1])
        if not 100 <= status < 200 or status == 101:
            break
    closes = headers.get("connection", "").lower() == "close" or start[0] == "HTTP/1.0"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, headers, b"", closes
    framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
    return status, headers, reader.body(headers, MAX_REPLY_BYTES, until_close=True), closes or not framed


class _Http:
    """Keep-alive connection for every call after ``register``.

    A plain socket, not ``http.client``: that costs ~12 ms of CPU to import (it pulls in
    email and ssl), before the extension's first ``next`` where the runtime's init waits for it.
    No timeout: ``next`` lasts as long as the environment is frozen.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self._sock: Optional[socket.socket] = None
        self._reader: Optional[Reader] = None

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None) -> Reply:
        for attempt in (1, 2):
            if self._sock is None or self._reader is None:
                self._sock = _connect(self.address)
                self._reader = Reader(self._sock)
            try:
                self._sock.sendall(_request_bytes(self.address, method, path, body, headers or {}))
                status, reply_headers, reply, closes = _read_reply(self._reader, method)
            except (OSError, ValueError) as exc:
                # Whatever broke, the connection is done: the next call starts a new one.
                self._close()
                stale = isinstance(exc, (BrokenPipeError, ConnectionResetError))  # a keep-alive the peer closed
                if attempt == 2 or not stale:
                    if isinstance(exc, OSError):
                        raise
                    raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
                continue
            if closes:
                self._close()
            return status, reply_headers, reply
        raise AssertionError("unreachable")

    def _close(self) -> None:
        try:
            if self._sock is not None:
                self._sock.close()
        except OSError:
            pass
        self._sock = self._reader = None


class Registration(NamedTuple):
    extension_id: str
    function_name: str
    function_version: str
    handler: str


class ExtensionsClient:
    def __init__(self, runtime_api: str) -> None:
        self._http = _Http(runtime_api)

    def register(self, name: str, events: List[str]) -> "RegisteredExtension":
        status, headers, body = raw_request(
            self._http.address, "POST", f"/{API_VERSION}/extension/register",
            json.dumps({"events": events}).encode(), {NAME_HEADER: name, "Content-Type": "application/json"})
        if status != 200:
            raise ExtensionsApiError(status, body.decode(errors="replace"))
        info = json.loads(body or b"{}")
        ext_id = headers.get(ID_HEADER.lower(), "")
        reg = Registration(ext_id, info.get("functionName", ""), info.get("functionVersion", ""),
                           info.get("handler", ""))
        return RegisteredExtension(self._http, reg)


class RegisteredExtension:
    def __init__(self, http_: _Http, registration: Registration) -> None:
        self._http = http_
        self.registration = registration
        self._headers = {ID_HEADER: registration.extension_id}

    def next_event(self) -> NextEvent:
        status, _, body = self._http.request("GET", f"/{API_VERSION}/extension/event/next",
                                             headers=self._headers)
        if status != 200:
            raise ExtensionsApiError(status, body.decode(errors="replace"))
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
            return parse_event(payload)
        except (ValueError, TypeError) as exc:
            raise UnreadableEvent(f"{exc}: {body[:300]!r}") from exc

    def init_error(self, error_type: str, message: str) -> None:
        self._report("init", error_type, message)

    def exit_error(self, error_type: str, message: str) -> None:
        self._report("exit", error_type, message)

    def _report(self, phase: str, error_type: str, message: str) -> None:
        body = json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": []}).encode()
        self._http.request("POST", f"/{API_VERSION}/extension/{phase}/error", body,
                           {**self._headers, ERROR_TYPE_HEADER: error_type, "Content-Type": "application/json"})

    def subscribe_telemetry(self, port: int, types: List[str], timeout_ms: int = 25) -> Tuple[int, str]:
        """Subscribe an HTTP listener; returns (status, body). RIE answers 202 NotSupported."""
        body = json.dumps({
            "schemaVersion": "2022-12-13", "types": types,
            "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": timeout_ms},
            "destination": {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{port}/telemetry"},
        }).encode()
        status, _, reply = self._http.request("PUT", f"/{TELEMETRY_VERSION}/telemetry", body,
                                              {**self._headers, "Content-Type": "application/json"})
        return status, reply.decode(errors="replace")
