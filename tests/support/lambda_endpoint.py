"""A recording stand-in for the Lambda API's Invoke and durable-callback calls.

Why: moto runs an invoked function in Docker (not here) and has no durable callbacks. This
endpoint answers these calls as Lambda does (rest-json: the status code, the error code in
``x-amzn-ErrorType``, a JSON body with ``Type`` and ``message``), so real botocore parses
them as in production; point ``AWS_ENDPOINT_URL_LAMBDA`` at ``endpoint_url``.

What it knows: the functions added with ``add_function`` (durable ones start one execution
per DurableExecutionName; a plain one may be told to refuse the name), the callback ids
added with ``add_callback``. Faults: ``throttle(n)`` (429 TooManyRequestsException),
``fail(n, status, code, message=None)``, ``hold(seconds)`` before answering. Every request is recorded.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["LambdaEndpoint", "LambdaRequest"]

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class LambdaRequest:
    operation: str  # "Invoke", "CallbackSuccess", "CallbackFailure"
    target: str  # the function name, or the callback id
    headers: Dict[str, str]
    query: Dict[str, str]
    body: bytes
    status: int = 0  # what it was answered
    at: float = field(default_factory=time.monotonic)

    def header(self, name: str) -> Optional[str]:
        return {k.lower(): v for k, v in self.headers.items()}.get(name.lower())


@dataclass
class _Function:
    durable: bool
    refuses_name: bool
    executions: Dict[str, bytes] = field(default_factory=dict)  # name -> payload


class LambdaEndpoint:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: List[LambdaRequest] = []
        self._functions: Dict[str, _Function] = {}
        self._callbacks: Set[str] = set()
        self.completed: Dict[str, Tuple[str, Any]] = {}  # callback id -> ("success"|"failure", body)
        self._faults: List[Tuple[int, str, Optional[str]]] = []  # (status, code, message) for the next calls
        self._hold_s = 0.0
        self.arrivals = 0  # requests come in, counted before any hold
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.endpoint = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "LambdaEndpoint":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_function(self, name: str, *, durable: bool = False, refuses_name: bool = False) -> str:
        with self._lock:
            self._functions[name] = _Function(durable, refuses_name)
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    def add_callback(self, callback_id: str) -> None:
        with self._lock:
            self._callbacks.add(callback_id)

    def executions(self, name: str) -> Dict[str, bytes]:
        with self._lock:
            return dict(self._functions[name].executions)

    def throttle(self, calls: int) -> None:
        self.fail(calls, 429, "TooManyRequestsException")

    def fail(self, calls: int, status: int, code: str, message: Optional[str] = None) -> None:
        with self._lock:
            self._faults.extend([(status, code, message)] * calls)

    def hold(self, seconds: float) -> None:
        self._hold_s = seconds

    def of(self, operation: str) -> List[LambdaRequest]:
        with self._lock:
            return [r for r in self.requests if r.operation == operation]

    # -- answering ----------------------------------------------------------------------
    def answer(self, request: LambdaRequest) -> Tuple[int, Dict[str, str], bytes]:
        with self._lock:
            self.arrivals += 1
        if self._hold_s:
            time.sleep(self._hold_s)
        with self._lock:
            self.requests.append(request)
            if self._faults:
                status, code, message = self._faults.pop(0)
                return _error(status, code, message or ("Rate Exceeded." if status == 429 else "Service error."))
            if request.operation == "Invoke":
                return self._invoke(request)
            return self._callback(request)

    def _invoke(self, request: LambdaRequest) -> Tuple[int, Dict[str, str], bytes]:
        function = self._functions.get(request.target)
        if function is None:
            return _error(404, "ResourceNotFoundException",
                          f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{request.target}")
        if request.header("X-Amz-Invocation-Type") != "Event":
            return _error(400, "InvalidParameterValueException", "this endpoint answers Event invokes only")
        name = request.header("X-Amz-Durable-Execution-Name")
        if name is not None and not function.durable and function.refuses_name:
            return _error(400, "InvalidParameterValueException",
                          "DurableExecutionName is only supported for durable functions.")
        if name is not None and function.durable:
            started = function.executions.get(name)
            if started is not None and started != request.body:
                return _error(409, "DurableExecutionAlreadyStartedException",
                              f"Execution {name} already started with a different input.")
            function.executions.setdefault(name, request.body)
        elif function.durable:
            function.executions[uuid.uuid4().hex] = request.body
        return 202, {"Content-Type": "application/json"}, b""

    def _callback(self, request: LambdaRequest) -> Tuple[int, Dict[str, str], bytes]:
        if request.target not in self._callbacks:
            return _error(404, "ResourceNotFoundException", f"Callback {request.target} not found.")
        self._callbacks.discard(request.target)
        body: Any = request.body
        if request.operation == "CallbackFailure":
            body = json.loads(request.body or b"{}")
        self.completed[request.target] = ("success" if request.operation == "CallbackSuccess" else "failure", body)
        return 200, {"Content-Type": "application/json"}, b"{}"


def _error(status: int, code: str, message: str) -> Tuple[int, Dict[str, str], bytes]:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code,
               "x-amzn-RequestId": str(uuid.uuid4())}
    return status, headers, json.dumps({"Type": "User" if status < 500 else "Service", "message": message}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        endpoint: LambdaEndpoint = self.server.endpoint  # type: ignore[attr-defined]
        if path.startswith("/2015-03-31/functions/") and path.endswith("/invocations"):
            function = path[len("/2015-03-31/functions/"):-len("/invocations")]
            operation, target = "Invoke", function.rpartition("function:")[2].partition(":")[0] or function
        elif path.startswith("/2025-12-01/durable-execution-callbacks/"):
            callback_id, _, verb = path[len("/2025-12-01/durable-execution-callbacks/"):].rpartition("/")
            operation, target = {"succeed": "CallbackSuccess", "fail": "CallbackFailure"}.get(verb, verb), callback_id
        else:
            operation, target = "Unknown", path
        request = LambdaRequest(operation, target, dict(self.headers), query, body)
        if operation == "Unknown":
            status, headers, data = _error(404, "UnknownOperationException", f"no operation at {path}")
        else:
            status, headers, data = endpoint.answer(request)
        request.status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
