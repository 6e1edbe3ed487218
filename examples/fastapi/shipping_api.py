"""A stand-in for the slow external shipping API the example's BackgroundTask calls (tests, demo).

``POST /quotes`` answers after ``delay_s`` with a quote; every request is recorded with the
times it came in and was answered, so a test can tell when the background work ran.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ShippingApi:
    def __init__(self, delay_s: float = 0.2) -> None:
        self.delay_s = delay_s
        self.quotes: list[dict[str, Any]] = []  # {"order_id", "received", "answered"} (epoch s)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                received = time.time()
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                time.sleep(api.delay_s)
                reply = json.dumps({"carrier": "slowpost", "cents": 499 + 50 * int(body.get("items", 1))}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                api.quotes.append({"order_id": body.get("order_id"), "received": received, "answered": time.time()})

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/quotes"

    def start(self) -> "ShippingApi":
        threading.Thread(target=self._server.serve_forever, name="shipping-api", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
