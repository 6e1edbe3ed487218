"""The Lambda Extensions API (2020-01-01) as typed requests and events.

Only a registered extension can ask for events or report errors, so those calls live on
``RegisteredExtension``. ``next`` never has a timeout: an extension is suspended inside it
for as long as the environment is frozen.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

API_VERSION = "2020-01-01"
TELEMETRY_VERSION = "2022-07-01"
NAME_HEADER = "Lambda-Extension-Name"
ID_HEADER = "Lambda-Extension-Identifier"
ERROR_TYPE_HEADER = "Lambda-Extension-Function-Error-Type"

# Error types we report through init/error and exit/error.
ERR_CONFIG = "Extension.ConfigError"
ERR_INIT = "Extension.InitError"
ERR_SOCKET = "Extension.SocketError"


class ExtensionsApiError(RuntimeError):
    """The Extensions API answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"Extensions API answered {status}: {body[:500]}")
        self.status = status


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
    """One HTTP/1.1 exchange over a plain socket, for ``register`` only.

    ``http.client`` costs ~12 ms to import (it pulls in email and ssl); the runtime waits
    for every extension to register, so register must not wait for that import.
    """
    host, _, port = address.rpartition(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {len(body)}\r\n"
               f"Connection: close\r\n{head}\r\n").encode() + body
    with socket.create_connection((host or "127.0.0.1", int(port))) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw_head, _, reply = b"".join(chunks).partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    reply_headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        reply_headers[name.strip()] = value.strip()
    length = reply_headers.get("Content-Length") or next(
        (v for k, v in reply_headers.items() if k.lower() == "content-length"), None)
    return status, reply_headers, reply[:int(length)] if length is not None else reply


class _Http:
    """Keep-alive connection for every call after ``register`` (http.client loads then)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._conn: Any = None

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None) -> Reply:
        import http.client

        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.address, timeout=None)
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                response = self._conn.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            except (http.client.HTTPException, OSError) as exc:
                # Whatever broke, the connection is done: a half-used one would refuse every
                # later request (CannotSendRequest), so the next call starts a new one.
                self._conn.close()
                self._conn = None
                stale = isinstance(exc, (BrokenPipeError, ConnectionResetError))  # a keep-alive the peer closed
                if attempt == 2 or not stale:
                    if isinstance(exc, OSError):
                        raise
                    raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")


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
        ext_id = next((v for k, v in headers.items() if k.lower() == ID_HEADER.lower()), "")
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
        return parse_event(json.loads(body))

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
