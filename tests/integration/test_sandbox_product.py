"""The product in the production-like sandbox: the response does not wait for the work."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_queue
from tests.support.waiting import wait_until

FUNCTION_DIR = Path(__file__).parent / "functions" / "sandboxed"


@pytest.fixture
def sandbox(built_layer, aws_resources, tmp_path):
    res = aws_resources()
    boxes = []

    def start(handler: str) -> Sandbox:
        env = {**res.env(), "TASK_LOG": str(tmp_path / "tasks.log"),
               "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
        box = Sandbox(built_layer, FUNCTION_DIR, handler, timeout_s=10, env=env).start()
        boxes.append(box)
        return box

    yield start, res, tmp_path / "tasks.log"
    for box in boxes:
        box.stop()


def test_a_one_second_task_does_not_delay_the_response(sandbox):
    start, _, task_log = sandbox
    box = start("app.handler")
    box.invoke({"tag": "warm"})  # cold start and boto3 set-up are not what this measures
    box.wait_idle()
    result = box.invoke({"tag": "slow"})
    assert result.status == 200 and result.json() == {"ok": True}
    assert result.elapsed_s < 0.5  # the caller did not wait for the 1 s task
    report = box.wait_for_report(result.request_id)
    assert report.post_runtime_extensions_ms >= 950  # the task ran after the response ...
    assert task_log.read_text().splitlines() == ["warm", "slow"]  # ... before the invoke ended


def test_unwrapped_handler_is_drained_on_telemetry_runtime_done(sandbox):
    start, res, _ = sandbox
    box = start("app.unwrapped")
    result = box.invoke({"tag": "telemetry"})
    box.wait_for_report(result.request_id)
    # Delivered within the same invoke, although no end-of-invoke marker was ever sent.
    assert drain_queue(res.queue_url, 1, timeout=2) == [{"tag": "telemetry"}]
    wait_until(lambda: any('"telemetry":true' in line.text.replace(" ", "") for line in box.logs),
               5, message="the extension did not report an active telemetry subscription")


def test_after_work_runs_after_the_response_and_before_the_next_invoke(sandbox):
    start, res, _ = sandbox
    box = start("app.after_handler")
    box.invoke({"tag": "warm", "seconds": 0.01})
    box.wait_idle()
    drain_queue(res.queue_url, 1, timeout=3)
    result = box.invoke({"tag": "slow", "seconds": 1.0, "fail": True})
    assert result.status == 200 and result.json()["ok"]
    assert result.elapsed_s < 0.1  # the caller did not wait for the 1 s of work
    report = box.wait_for_report(result.request_id)
    assert report.post_runtime_extensions_ms >= 950  # the environment stayed thawed for it
    (landed,) = drain_queue(res.queue_url, 1, timeout=3)
    assert landed["tag"] == "slow" and landed["after_s"] >= 1.0  # deferred by the work, same invoke
    # The runtime waited in `next` without the GIL: the work's thread ticked the whole second.
    ticks = box.invoke({"ticks": True}).json()["ticks"]
    assert ticks >= 80, f"the post-response thread ran {ticks} of ~100 ticks"
    logs = "\n".join(line.text for line in box.logs)
    assert "post-response work after_handler.<locals>.broken raised" in logs
    assert "Traceback" in logs and 'raise ValueError(f"post-response work failed' in logs  # its frames
    wait_until(lambda: any('"after_failed":1' in line.text.replace(" ", "") for line in box.logs), 5,
               message="the failure was not counted by the extension")
