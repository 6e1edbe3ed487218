"""A handler called outside Lambda (a script, a unit test without capture(), a REPL) with no
AWS endpoint it can reach: it fails fast, one line per item, and the warning points at the
caller's own line. Inside Lambda (a Runtime API is set) inline delivery still waits for an
endpoint that is down, up to its budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """\
import json, sys, time, warnings
from types import SimpleNamespace
from handler_lib import defer

@defer
def handler(event, context):
    defer.sqs(sys.argv[1], {"n": 1})
    defer.sns(sys.argv[2], {"n": 2})

caught = []
warnings.showwarning = lambda message, category, filename, lineno, *rest: caught.append((filename, lineno))
started = time.monotonic()
handler({}, SimpleNamespace(aws_request_id="r-local", get_remaining_time_in_millis=lambda: 60_000))  # line 13
print(json.dumps({"elapsed_s": time.monotonic() - started, "warned_at": caught}))
"""


@pytest.mark.parametrize("on_lambda", [False, True])
def test_an_unreachable_endpoint_is_not_waited_for_outside_lambda(fault_proxy, aws_resources, tmp_path, on_lambda):
    res = aws_resources()
    fault_proxy.refuse_connections()
    script = tmp_path / "call_handler.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "DEFER_SOCKET": str(tmp_path / "none.sock"), "AWS_ENDPOINT_URL": fault_proxy.endpoint_url,
           "DEFER_INLINE_BUDGET_MS": "3000", "PYTHONPATH": str(REPO_ROOT)}
    env.pop("DEFER_DLQ_URL", None)
    env.pop("AWS_LAMBDA_RUNTIME_API", None)
    if on_lambda:
        env["AWS_LAMBDA_RUNTIME_API"] = "127.0.0.1:9"  # only its presence matters here
    out = subprocess.run([sys.executable, str(script), res.queue_url, res.topic_arn], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    gave_up = [line for line in out.stderr.splitlines() if "gave up on" in line]
    assert [line.split()[3] for line in gave_up] == ["sqs", "sns"], out.stderr  # one line per item, in order
    assert result["warned_at"] == [[str(script), 13]]  # the caller's line, not the library's
    if on_lambda:
        # Waits for the endpoint: retries with backoff until the next try would fall past the
        # 3 s budget, which full jitter puts anywhere from ~1.5 s on (outside Lambda: ~0.05 s).
        assert 1.2 <= result["elapsed_s"] <= 3.5, result
        assert all("within the inline budget" in line for line in gave_up), out.stderr
        assert all("outside Lambda" not in line for line in gave_up)
    else:
        assert result["elapsed_s"] < 1.5  # did not wait (it took the whole 9 s budget before)
        assert all("runs outside Lambda" in line and "capture()" in line for line in gave_up)
