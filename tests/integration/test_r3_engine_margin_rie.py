"""DEFER_DEADLINE_MARGIN_MS at or above the function's timeout, under RIE with the built layer.

Where the timeout is known at start (AWS_LAMBDA_FUNCTION_TIMEOUT: RIE, sam local) the value
is refused there. Lambda does not say it: there each invoke's margin is capped so that the
invoke keeps time to deliver, with a WARNING. The tests hide the variable from the extension
(DEFER_RUNNER_PYTHON) and from the runtime (AWS_LAMBDA_EXEC_WRAPPER) to run as on Lambda.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.moto_server import drain_queue

FUNCTION_DIR = Path(__file__).parent / "functions" / "tasks"


@pytest.fixture
def start(rie_function):
    start_function, res, proxy = rie_function
    return (lambda timeout_s, **env: start_function(FUNCTION_DIR, timeout_s, **env)), res


def as_on_lambda(tmp_path: Path) -> dict:
    """Environment that hides AWS_LAMBDA_FUNCTION_TIMEOUT from the extension and the runtime."""
    python = tmp_path / "python-without-timeout"
    python.write_text(f"#!/bin/bash\nunset AWS_LAMBDA_FUNCTION_TIMEOUT\nexec {sys.executable} \"$@\"\n")
    wrapper = tmp_path / "wrapper-without-timeout"
    wrapper.write_text("#!/bin/bash\nunset AWS_LAMBDA_FUNCTION_TIMEOUT\nexec /opt/defer-runner/exec-wrapper \"$@\"\n")
    for script in (python, wrapper):
        script.chmod(0o755)
    return {"DEFER_RUNNER_PYTHON": str(python), "AWS_LAMBDA_EXEC_WRAPPER": str(wrapper)}


def tags_of(bodies, tag):
    return sorted(b["n"] for b in bodies if isinstance(b, dict) and b.get("tag") == tag)


def test_a_margin_not_below_a_known_timeout_is_refused_at_start(start):
    start, res = start
    rie = start(3, DEFER_DEADLINE_MARGIN_MS="3000")
    status, body, _ = rie.invoke({"tag": "refused", "sqs": 2})
    logs = rie.logs()
    assert "Extension.ConfigError" in logs, logs[-3000:]
    assert "DEFER_DEADLINE_MARGIN_MS=3000" in logs and "AWS_LAMBDA_FUNCTION_TIMEOUT" in logs
    assert b"DEFER_DEADLINE_MARGIN_MS=3000" in body or status != 200  # the invoke fails too


@pytest.mark.parametrize("mode", ["extension", "inline"])
def test_a_margin_that_leaves_no_time_is_capped_and_the_invoke_delivers(start, tmp_path, mode):
    start, res = start
    rie = start(3, DEFER_DEADLINE_MARGIN_MS="5000", DEFER_MODE=mode, **as_on_lambda(tmp_path))
    status, body, _ = rie.invoke({"tag": "warm", "sqs": 1})  # a cold start must not eat the window
    assert status == 200, body
    status, body, _ = rie.invoke({"tag": "capped", "sqs": 3})
    assert status == 200, body
    assert tags_of(drain_queue(res.queue_url, 4, timeout=5), "capped") == [0, 1, 2]  # delivered in the invoke
    assert drain_queue(res.dlq_url, 0, timeout=1) == []  # nothing given up
    logs = rie.logs()
    warnings = [line for line in logs.splitlines() if "DEFER_DEADLINE_MARGIN_MS=5000" in line]
    assert warnings and all("WARNING" in line for line in warnings), logs[-3000:]
    by_extension = [line for line in warnings if line.startswith("{")]  # its JSON log lines
    assert len(by_extension) == 1 and len(warnings) - len(by_extension) == (mode == "inline"), warnings
