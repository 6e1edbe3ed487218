"""On demand, the defer-runner reports ready before it loads the AWS SDK, and loads it beside
the first invoke: the first invoke's items are still delivered within it, a drain waits for a
client that is slow to make, and never past its deadline.

A client slow to make, by a real mechanism: the container credentials endpoint
(``AWS_CONTAINER_CREDENTIALS_FULL_URI``, how SnapStart functions get their role's
credentials), which botocore calls when it makes the first client, held by the test until it
releases it. Every wait is bounded.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_queue

REPO = Path(__file__).resolve().parents[2]
FAULTS = Path(__file__).parent / "functions" / "faults"  # app.handler defers {"sqs": n, "sns": m} items
HOLD_BOUND_S = 30.0  # the longest the credentials endpoint holds a request, released or not

# extension.main._build as main() does it after registering, on demand; reports, the moment
# it returns (when main() calls `next` for the first time), whether botocore is loaded.
BUILD = """
import json, os, sys
from extension import lambda_api, main
from extension.listener import listen
from handler_lib import config as cfg

config = cfg.load()
registered = lambda_api.RegisteredExtension(
    lambda_api._Http(os.environ["AWS_LAMBDA_RUNTIME_API"]),
    lambda_api.Registration("ext-id", "fn", "$LATEST", "app.handler"))
runner = main._build(config, listen(config.socket_path), registered, sdk=main.SdkLoader(in_init=main.sdk_in_init()))
ready = {"botocore": sorted(m for m in sys.modules if m.split(".")[0] == "botocore"),
         "drain": sorted(m for m in ("handler_lib.engine.drain", "handler_lib.engine.sinks",
                                     "handler_lib.engine.dead_letters", "aws_lambda_powertools") if m in sys.modules)}
print(json.dumps({**ready, "clients": [kind for kind, sink in runner.drainer.sinks.items() if sink._client is not None]}),
      flush=True)
os._exit(0)
"""


class HeldCredentials:
    """A container credentials endpoint that answers each request only once released."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.release = threading.Event()
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                outer.requests += 1
                outer.asked.set()
                if not outer.release.wait(HOLD_BOUND_S):
                    self.send_error(503)
                    return
                expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
                body = json.dumps({"AccessKeyId": "testing", "SecretAccessKey": "testing", "Token": "testing",
                                   "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/credentials"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def held_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldCredentials]:
    """The role's credentials from the held endpoint only: none in the environment."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)  # the sandbox passes the host's environment on
    endpoint = HeldCredentials()
    yield endpoint
    endpoint.close()


@pytest.fixture
def sandbox(built_layer: Path, aws_resources, tmp_path: Path) -> Iterator[Any]:
    res = aws_resources()
    boxes: List[Sandbox] = []

    def start(timeout_s: float, init: str = "on-invoke", **env: str) -> Sandbox:
        full_env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "defer.sock"),
                    "DEFER_JOURNAL_DIR": str(tmp_path / "journal"), **env}
        box = Sandbox(built_layer, FAULTS, "app.handler", timeout_s=timeout_s, memory_mb=512, env=full_env,
                      init=init, echo=False).start()
        boxes.append(box)
        return box

    yield start, res
    for box in boxes:
        box.stop()


def extension_records(box: Sandbox, message: str) -> List[Dict[str, Any]]:
    """The extension's JSON log records with this message, with the time each line arrived."""
    out = []
    for line in box.logs:
        if line.source != "defer-runner" or not line.text.startswith("{"):
            continue
        try:
            record = json.loads(line.text)
        except ValueError:
            continue
        if record.get("message") == message:
            out.append({**record, "_arrived": line.time})
    return out


def drain_of(box: Sandbox, request_id: str) -> Dict[str, Any]:
    (record,) = [r for r in extension_records(box, "drain finished") if r.get("request_id") == request_id]
    return record


def test_on_demand_the_sdk_is_not_loaded_when_the_first_next_is_called(tmp_path: Path, aws_env: Dict[str, str]) -> None:
    api = ThreadingHTTPServer(("127.0.0.1", 0), _TelemetryNotSupported)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        env = {**aws_env, "PATH": "/usr/bin:/bin", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
               "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.server_address[1]}",
               "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal"),
               "AWS_LAMBDA_FUNCTION_NAME": "fn"}
        proc = subprocess.run([sys.executable, "-c", BUILD], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=60)
    finally:
        api.shutdown()
        api.server_close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Nothing of the SDK is loaded (not even the bare package, which Powertools' user-agent
    # helper used to import), nor the drain's modules or Powertools, and no client made.
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"botocore": [], "drain": [], "clients": []}


class _TelemetryNotSupported(BaseHTTPRequestHandler):
    """The Extensions API as RIE has it during init: Telemetry answered 202 NotSupported."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_PUT(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"errorType":"Telemetry.NotSupported"}'
        self.send_response(202)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_the_first_invokes_items_are_delivered_within_it_though_the_sdk_loads_after_init(sandbox) -> None:
    start, res = sandbox
    # GIVEN an environment initialised ahead of its first invoke (then frozen until it)
    box = start(timeout_s=10, init="eager")
    box.wait_for_log("defer-runner ready", timeout=10, source="defer-runner")
    assert extension_records(box, "AWS SDK loaded") == []  # not in init
    # WHEN the first invoke defers 2 SQS messages and an SNS one
    sent = time.time()
    result = box.invoke({"tag": "first", "sqs": 2, "sns": 1})
    assert result.status == 200 and not result.function_error
    report = box.wait_for_report(result.request_id)
    # THEN the SDK loaded after the invoke began, with no client for a kind nobody deferred ...
    (loaded,) = extension_records(box, "AWS SDK loaded")
    assert loaded["sdk_in_init"] is False and loaded["_arrived"] >= sent
    assert "event" not in loaded["clients"]
    # ... and that invoke's drain delivered all three before it ended
    assert report.status == "success"
    drain = drain_of(box, result.request_id)
    assert (drain["delivered"], drain["carried_over"], drain["in_flight"]) == (3, 0, 0)
    assert sorted(m["n"] for m in drain_queue(res.queue_url, 2, timeout=5)) == [0, 1]


def test_a_first_drain_waits_for_a_client_that_is_slow_to_make(sandbox, held_credentials) -> None:
    start, res = sandbox
    box = start(timeout_s=10, AWS_CONTAINER_CREDENTIALS_FULL_URI=held_credentials.url)
    # GIVEN the first invoke's response is out, and its SQS client waits for credentials
    result = box.invoke({"tag": "slow-client", "sqs": 1})
    assert result.status == 200 and not result.function_error
    assert held_credentials.asked.wait(10), "the extension never asked for credentials"
    assert all(r.request_id != result.request_id for r in box.reports)  # the drain is waiting
    # WHEN the credentials come
    held_credentials.release.set()
    # THEN the same invoke's drain delivers the item, well before the deadline
    report = box.wait_for_report(result.request_id, timeout=15)
    assert report.status == "success" and report.duration_ms < 10_000
    drain = drain_of(box, result.request_id)
    assert (drain["delivered"], drain["in_flight"], drain["carried_over"]) == (1, 0, 0)
    assert drain_queue(res.queue_url, 1, timeout=5) == [{"tag": "slow-client", "n": 0}]


def test_a_first_drain_never_waits_past_its_deadline_for_the_sdk(sandbox, held_credentials) -> None:
    start, res = sandbox
    box = start(timeout_s=3, AWS_CONTAINER_CREDENTIALS_FULL_URI=held_credentials.url)
    # GIVEN credentials that do not come within the first invoke
    first = box.invoke({"tag": "held", "sqs": 1})
    assert first.status == 200 and not first.function_error
    report = box.wait_for_report(first.request_id, timeout=15)
    # THEN the invoke ended before its timeout (the drain stopped at deadline - margin), the
    # item still in flight: neither delivered nor lost
    assert held_credentials.asked.is_set()
    assert report.status == "success" and report.duration_ms < 3000
    drain = drain_of(box, first.request_id)
    assert drain["delivered"] == 0 and drain["in_flight"] + drain["carried_over"] == 1
    # WHEN the credentials come, the item goes out in a later invoke (at most two more)
    held_credentials.release.set()
    for n in range(2):
        later = box.invoke({"tag": f"later-{n}"})
        assert box.wait_for_report(later.request_id, timeout=15).status == "success"
        if any(r.get("delivered") for r in extension_records(box, "drain finished")):
            break
    assert drain_queue(res.queue_url, 1, timeout=5) == [{"tag": "held", "n": 0}]
    # AND the extension never restarted: one start, every invoke a success
    assert len(extension_records(box, "defer-runner ready")) == 1
    assert all(r.status == "success" for r in box.reports)
