"""A tiny HTTP/1.1 server with a route table, shared by every API the sandbox serves.

The Runtime, Extensions and Telemetry APIs live on one address (`AWS_LAMBDA_RUNTIME_API`),
the invoke endpoint on another. Handlers block (long polls), so each connection gets a
thread. HTTP/1.1 keep-alive matters: awslambdaric's C client reuses its connection.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Mapping, Optional, Pattern, Tuple

__all__ = ["Request", "Response", "Router", "HttpServer", "json_response", "error_response"]


@dataclass
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    params: Dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: Dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def json_response(status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> Response:
    return Response(status, json.dumps(payload).encode(), dict(headers or {}))


def error_response(status: int, error_type: str, message: str) -> Response:
    return json_response(status, {"errorMessage": message, "errorType": error_type})


Handler = Callable[[Request], Response]


class Router:
    """Maps (method, path pattern) to a handler; `{name}` segments become params."""

    def __init__(self) -> None:
        self._routes: List[Tuple[str, Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile(f"^{regex}$"), handler))

    def dispatch(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        allowed = False
        for method, regex, handler in self._routes:
            match = regex.match(path)
            if not match:
                continue
            allowed = True
            if method == request.method:
                request.params = match.groupdict()
                return handler(request)
        if allowed:
            return error_response(405, "MethodNotAllowed", f"{request.method} not allowed on {path}")
        return error_response(404, "NotFound", f"no route for {request.method} {path}")


class _CIDict(Dict[str, str]):
    """Header map with case-insensitive `get` (HTTP header names are case-insensitive)."""

    def get(self, key: str, default: Any = None) -> Any:
        lowered = key.lower()
        for k, v in self.items():
            if k.lower() == lowered:
                return v
        return default


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks: List[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _make_handler(router: Router) -> type:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are two writes; with Nagle on, the body waits for the peer's delayed
        # ACK (~40 ms per invoke round trip; production Lambda has no such delay).
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            request = Request(self.command, self.path, _CIDict(self.headers.items()), _read_body(self))
            try:
                response = router.dispatch(request)
            except Exception as exc:  # a handler bug must not kill the connection thread silently
                response = error_response(500, "InternalServerError", f"{type(exc).__name__}: {exc}")
            try:
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):  # the caller was killed (reset, stop)
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

    return _Handler


_POLL_S = 0.05


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Peers here are processes the sandbox kills; a dropped connection is routine."""


class HttpServer:
    """A threaded server on 127.0.0.1:`port` (0 picks a free port) running a Router."""

    def __init__(self, router: Router, port: int = 0, host: str = "127.0.0.1") -> None:
        handler = _make_handler(router)
        self._server = _QuietServer((host, port), handler)
        # serve_forever notices shutdown() at its next poll: 0.5 s by default made every stop take that long
        self._thread = threading.Thread(target=self._server.serve_forever, args=(_POLL_S,), name=f"http:{self.port}",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
