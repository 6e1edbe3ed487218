"""A configurable external extension for tests, copied into a layer by `testing.add_recording_extension`.

It records everything it sees (register reply, events, telemetry, API probes) as JSON
lines, and can be told to sleep on INVOKE, wait for `platform.runtimeDone`, crash, or
linger on SHUTDOWN. Standard library only, so it runs under RIE as well. Its config is
`<layer>/recorder/<name>.json`, found relative to its own path (never a hard-coded /opt).
"""
from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

NAME = os.path.basename(sys.argv[0])
CONFIG: Dict[str, Any] = {}
HOST, PORT = "", "0"


def _load_config() -> None:
    """Read `<layer>/recorder/<name>.json` and the API address (at start, not at import)."""
    global HOST, PORT
    path = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "..", "recorder", f"{NAME}.json")
    with open(path) as handle:
        CONFIG.update(json.load(handle))
    HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
_lock = threading.Condition()
_telemetry: List[Dict[str, Any]] = []


def record(kind: str, **data: Any) -> None:
    line = json.dumps({"t": time.time(), "kind": kind, "ext": NAME, **data})
    with _lock:
        with open(CONFIG["record"], "a") as handle:
            handle.write(line + "\n")


def call(method: str, path: str, body: Optional[Any] = None,
         headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], Any]:
    conn = http.client.HTTPConnection(HOST, int(PORT))  # no timeout: next is a long poll
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, data, headers or {})
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return response.status, dict(response.getheaders()), parsed


class _Listener(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        batch = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        with _lock:
            _telemetry.extend(batch)
            _lock.notify_all()
        for event in batch:  # recorded to a file, never printed: printing would feed the stream
            record("telemetry", event=event)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _runtime_done_seen(request_id: str) -> bool:
    return any(e.get("type") == "platform.runtimeDone" and e["record"].get("requestId") == request_id
               for e in _telemetry)


def _probe_errors() -> None:
    for label, headers in (("missing", {}), ("invalid", {"Lambda-Extension-Identifier": "not-a-uuid"})):
        status, _, body = call("GET", "/2020-01-01/extension/event/next", headers=headers)
        record("probe_next", label=label, status=status, body=body)


def _probe_bad_name() -> None:
    """A name that is no file in /opt/extensions is an internal extension's: asking for
    SHUTDOWN under it is refused (with INVOKE only it would register and hold init)."""
    status, _, body = call("POST", "/2020-01-01/extension/register", {"events": ["INVOKE", "SHUTDOWN"]},
                           {"Lambda-Extension-Name": NAME + "-wrong-name"})
    record("probe_register", status=status, body=body)


def _subscribe(ext_id: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    headers = {"Lambda-Extension-Identifier": ext_id, "Content-Type": "application/json"}
    for buffering in CONFIG.get("probe_buffering", []):
        status, _, body = call("PUT", "/2022-07-01/telemetry", _subscription(server, buffering), headers)
        record("probe_subscribe", buffering=buffering, status=status, body=body)
    status, _, body = call("PUT", "/2022-07-01/telemetry", _subscription(server, CONFIG["telemetry"]), headers)
    record("subscribed", status=status, body=body)


def _subscription(server: ThreadingHTTPServer, buffering: Dict[str, Any]) -> Dict[str, Any]:
    body = {"schemaVersion": CONFIG.get("schema_version", "2022-12-13"),
            "types": CONFIG.get("telemetry_types", ["platform", "function"]), "buffering": buffering,
            "destination": {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{server.server_address[1]}/"}}
    return {key: value for key, value in body.items() if value is not None}  # schema_version None: left out


def _on_invoke(event: Dict[str, Any]) -> None:
    if CONFIG.get("wait_runtime_done"):
        with _lock:
            seen = _lock.wait_for(lambda: _runtime_done_seen(event["requestId"]), CONFIG["wait_runtime_done"])
        record("runtime_done_during_invoke", requestId=event["requestId"], seen=bool(seen))
    marker = CONFIG.get("crash_marker")
    if marker and os.path.exists(marker):
        os.unlink(marker)
        record("crashing")
        os._exit(3)
    time.sleep(CONFIG.get("invoke_sleep_s", 0))


def main() -> None:
    _load_config()
    record("started", pid=os.getpid(), env={k: os.environ.get(k) for k in CONFIG.get("env_keys", [])})
    print(f"recording extension {NAME} started", flush=True)
    if CONFIG.get("probe_errors"):
        _probe_errors()
    if CONFIG.get("probe_bad_name"):
        _probe_bad_name()
    status, headers, body = call("POST", "/2020-01-01/extension/register",
                                 {"events": CONFIG.get("events", ["INVOKE", "SHUTDOWN"])},
                                 {"Lambda-Extension-Name": NAME})
    ext_id = headers.get("Lambda-Extension-Identifier", "")
    record("registered", status=status, body=body, ext_id=ext_id)
    if CONFIG.get("telemetry"):
        _subscribe(ext_id)
    time.sleep(CONFIG.get("init_sleep_s", 0))
    record("first_next")
    while True:
        status, _, event = call("GET", "/2020-01-01/extension/event/next",
                                headers={"Lambda-Extension-Identifier": ext_id})
        record("event", status=status, event=event)
        if status != 200:
            sys.exit(1)
        if event["eventType"] == "INVOKE":
            _on_invoke(event)
        else:
            time.sleep(CONFIG.get("shutdown_sleep_s", 0))
            record("shutdown_done")
            sys.exit(0)


if __name__ == "__main__":
    main()
