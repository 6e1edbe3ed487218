"""The peer design for comparison: an extension that takes each item as an HTTP POST on localhost.

Run as a subprocess (``python -m bench.http_peer``); prints its port. A well-behaved peer:
HTTP/1.1 keep-alive, TCP_NODELAY, the reply written in one ``write``. Each POST body is a
JSON item, decoded and appended to an in-memory list, then answered ``202`` with no body.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any, List

from .common import serve_on_free_port

ITEMS: List[Any] = []
REPLY = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ITEMS.append(json.loads(body))
        if len(ITEMS) > 100_000:
            ITEMS.clear()
        self.wfile.write(REPLY)


if __name__ == "__main__":
    serve_on_free_port(Handler)
