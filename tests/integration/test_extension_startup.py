"""The defer-runner's set-up before its first ``next`` where init runs ahead of any request
(provisioned concurrency, SnapStart): the drain and the lean transport's clients (SQS, SNS,
EventBridge) are made inside init, so the snapshot or the pre-initialised environment holds
them; botocore, which only Lambda, Step Functions and S3 items need, loads when such an item
comes (in init too when the journal replays one), not for every function: it would hold
~20 MB of the function's memory in each environment. On demand all of it loads after the
first ``next`` (tests/integration/test_coldstart_sdk.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]

# Runs extension.main._build as main() does after registering, and reports the sinks' clients
# the moment it returns, i.e. when main() would call `next` for the first time.
BUILD = """
import json, os
from extension import lambda_api, main
from extension.listener import listen
from handler_lib import config as cfg

config = cfg.load()
registered = lambda_api.RegisteredExtension(
    lambda_api._Http(os.environ["AWS_LAMBDA_RUNTIME_API"]),
    lambda_api.Registration("ext-id", "fn", "$LATEST", "app.handler"))
runner = main._build(config, listen(config.socket_path), registered)
import sys
made = {kind: sink._client is not None for kind, sink in runner.drainer.sinks.items()}
print(json.dumps({**made, "botocore": "botocore.session" in sys.modules}), flush=True)
os._exit(0)
"""


@pytest.fixture
def telemetry_not_supported() -> Iterator[str]:
    """The Extensions API as RIE has it during init: Telemetry answered 202 NotSupported."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"errorType":"Telemetry.NotSupported"}'
            self.send_response(202)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("initialization_type", ["provisioned-concurrency", "snap-start"])
def test_clients_exist_when_the_first_next_is_called(tmp_path: Path, aws_env: dict[str, str],
                                                      telemetry_not_supported: str, initialization_type: str) -> None:
    env = {**aws_env, "PATH": "/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API": telemetry_not_supported,
           "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
           "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal"),
           "AWS_LAMBDA_FUNCTION_NAME": "fn"}
    proc = subprocess.run([sys.executable, "-c", BUILD], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    made = json.loads(proc.stdout.strip().splitlines()[-1])
    # the lean clients, in init: not what a caller waits for here; botocore's only once needed
    assert made == {"sqs": True, "sns": True, "event": True, "invoke": False, "sfn": False, "callback": False,
                    "botocore": False}, proc.stderr[-3000:]
