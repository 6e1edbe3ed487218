"""The built layer on Lambda Managed Instances (the sandbox's managed-instances mode).

The extension must not ask for INVOKE there (that fails init, and on LMI a failed extension
terminates the environment), deliver items while the environment keeps serving concurrent
requests, and flush at SHUTDOWN. Delivery is at least once in general; with no faults, as
here, every item lands exactly once (a duplicate needs a retried call that had landed).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lambda_sandbox import Sandbox
from lambda_sandbox.testing import copy_layer
from tests.support.moto_server import drain_queue
from tests.support.tcp_relay import TcpRelay
from tests.support.waiting import free_port, wait_until

FUNCTION_DIR = Path(__file__).parent / "functions" / "lmi"


@pytest.fixture
def lmi_box(built_layer, aws_resources, tmp_path):
    boxes = []
    res = aws_resources()

    def start(handler: str = "app.handler", **env: str) -> Sandbox:
        box = Sandbox(built_layer, FUNCTION_DIR, handler, timeout_s=10, echo=False,
                      mode="managed-instances", max_concurrency=4,
                      env={**res.env(), "DEFER_SOCKET": str(tmp_path / "defer.sock"),
                           "DEFER_JOURNAL_DIR": str(tmp_path / "journal"),
                           "AWS_LAMBDA_EXEC_WRAPPER": "/opt/defer-runner/exec-wrapper", **env}).start()
        boxes.append(box)
        return box

    yield start, res
    for box in boxes:
        box.stop()


def _ready_lines(box: Sandbox) -> int:
    return sum("defer-runner ready" in line.text for line in box.logs)


def test_forty_concurrent_invokes_deliver_every_item_once_with_no_restart(lmi_box):
    start, res = lmi_box
    box = start()
    # WHEN 40 invokes arrive 8 at a time, each deferring 3 items and 3 ordered FIFO items
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: box.invoke({"n": n, "items": 3, "fifo": 3}), range(40)))
    assert all(r.status == 200 and r.function_error is None for r in results), [r.body for r in results]
    assert len({r.json()["pid"] for r in results}) > 1  # served by several worker processes
    # THEN every item lands exactly once, while the environment keeps running (no SHUTDOWN yet)
    got = drain_queue(res.queue_url, 120, timeout=15)
    assert sorted((m["n"], m["i"]) for m in got) == [(n, i) for n in range(40) for i in range(3)]
    fifo = drain_queue(res.fifo_queue_url, 120, timeout=15)
    by_group = defaultdict(list)
    for message in fifo:
        by_group[message["n"]].append(message["seq"])
    assert dict(by_group) == {n: [0, 1, 2] for n in range(40)}  # each group in the order deferred
    # AND the extension started once and never restarted; nobody asked it for INVOKE
    assert _ready_lines(box) == 1
    logs = "\n".join(line.text for line in box.logs)
    assert "continuous delivery (Managed Instances)" in logs
    ready = json.loads(next(line.text for line in box.logs if "defer-runner ready" in line.text))
    assert ready["telemetry"] is False  # no runtimeDone on Managed Instances: no subscription
    assert "ValidationError" not in logs
    assert "Extension.Crash" not in logs and "resetting the environment" not in logs
    assert "delivers the others itself" not in logs  # every end marker was acknowledged in full
    assert len(box.reports) == 40 and {r.status for r in box.reports} == {"success"}


def test_post_response_work_runs_and_its_items_are_delivered(lmi_box):
    # GIVEN handlers whose post-response work (defer.after) defers an item 0.2 s after the response
    start, res = lmi_box
    box = start("app.after_handler")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: box.invoke({"n": n}), range(16)))
    assert all(r.status == 200 and r.json() == {"ok": True} for r in results)
    # THEN every item deferred after the response is delivered (nothing is frozen under the work)
    got = drain_queue(res.queue_url, 16, timeout=15)
    assert sorted(m["n"] for m in got) == list(range(16))
    assert all(m["after_s"] >= 0.2 for m in got)
    assert _ready_lines(box) == 1


def test_items_held_back_by_an_outage_are_flushed_at_shutdown(lmi_box, fault_proxy):
    # GIVEN SQS throttling every call, so the items back off in the extension's queue
    start, res = lmi_box
    box = start(AWS_ENDPOINT_URL=fault_proxy.endpoint_url)
    fault_proxy.throttle("SendMessageBatch")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: box.invoke({"n": n, "items": 2}), range(4)))
    assert all(r.status == 200 for r in results)
    wait_until(lambda: fault_proxy.count("SendMessageBatch") >= 3, 10, message="no retries seen")
    assert drain_queue(res.queue_url, 0, timeout=0.5) == []
    # WHEN the outage ends and the environment is shut down at once
    fault_proxy.clear()
    box.stop()
    # THEN the SHUTDOWN drain delivers what was left, each item once; no restart on the way
    got = drain_queue(res.queue_url, 8, timeout=10)
    assert sorted((m["n"], m["i"]) for m in got) == [(n, i) for n in range(4) for i in range(2)]
    assert _ready_lines(box) == 1
    shutdown = [line.text for line in box.logs if "drain finished" in line.text and "shutdown" in line.text]
    assert shutdown, "the SHUTDOWN drain did not report"


def test_extension_falls_back_to_shutdown_only_when_invoke_is_refused(built_layer, aws_resources, tmp_path):
    # GIVEN Managed Instances that do not say so in AWS_LAMBDA_INITIALIZATION_TYPE (the extension
    # only learns it from the refused registration): the sandbox's variable is overridden for the
    # extension by a wrapper script in its place
    layer = copy_layer(built_layer, tmp_path / "layer")
    runner = layer / "extensions" / "defer-runner"
    (layer / "real").mkdir()
    runner.rename(layer / "real" / "defer-runner")  # it finds the layer from its own path: one level down
    runner.write_text('#!/bin/sh\n'
                      'AWS_LAMBDA_INITIALIZATION_TYPE=on-demand exec "$(dirname "$0")/../real/defer-runner"\n')
    runner.chmod(0o755)
    res = aws_resources()
    box = Sandbox(layer, FUNCTION_DIR, "app.handler", timeout_s=10, echo=False, mode="managed-instances",
                  max_concurrency=2, env={**res.env(), "DEFER_SOCKET": str(tmp_path / "defer.sock"),
                                          "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}).start()
    try:
        result = box.invoke({"n": 7, "items": 2})
        # THEN init did not fail: the refusal was recognised, and the items are delivered
        assert result.status == 200 and result.function_error is None
        logs = "\n".join(line.text for line in box.logs)
        assert "INVOKE refused" in logs and "registering for SHUTDOWN only" in logs
        got = drain_queue(res.queue_url, 2, timeout=10)
        assert sorted(m["i"] for m in got) == [0, 1]
    finally:
        box.stop()


def test_items_held_when_the_extensions_api_goes_away_each_get_an_error_line(
        built_layer, aws_resources, fault_proxy, tmp_path):
    # GIVEN an extension that reaches the Extensions API through a relay the test can cut,
    # holding items that SQS throttling keeps from going out
    fault_proxy.throttle("SendMessageBatch")
    box, relay = _relayed_box(built_layer, tmp_path, fault_proxy, aws_resources(), mode="managed-instances",
                              max_concurrency=2)
    try:
        result = box.invoke({"n": 1, "items": 3})
        assert result.status == 200 and result.function_error is None
        wait_until(lambda: fault_proxy.count("SendMessageBatch") >= 1, 10, message="no delivery attempt")
        # WHEN the Extensions API stops answering
        relay.cut()

        def gone_lines() -> list:
            return [line.text for line in box.logs if "exiting with sqs" in line.text]

        # THEN the extension says, for each item it holds, that it exits with it undelivered
        lines = wait_until(lambda: gone_lines() if len(gone_lines()) >= 3 else None, 10,
                           message=lambda: "\n".join(line.text for line in box.logs)[-3000:])
        assert len(lines) == 3 and all('"level":"ERROR"' in text for text in lines), lines
        assert all("Defer.ApiGoneUndelivered" in text for text in lines)
        assert len({json.loads(text)["item_id"] for text in lines}) == 3
        assert any("the Extensions API is gone; exiting" in line.text for line in box.logs)
    finally:
        box.stop()


def test_a_short_outage_of_the_extensions_api_does_not_end_the_extension(
        built_layer, aws_resources, fault_proxy, tmp_path):
    # GIVEN an on-demand environment whose extension reaches the Extensions API through a relay,
    # and a slow SQS, so that the extension is draining (not waiting in `next`) when the API goes
    res = aws_resources()
    fault_proxy.set_latency(1.0, "SendMessageBatch")
    box, relay = _relayed_box(built_layer, tmp_path, fault_proxy, res)
    try:
        assert box.invoke({"n": 1, "items": 2}).status == 200
        # WHEN the API goes away during the drain, so the `next` after it is refused, and is back
        # 0.2 s after the drain ended (within the extension's retries)
        relay.cut()
        wait_until(lambda: any("drain finished" in line.text for line in box.logs), 10, message="no drain")
        time.sleep(0.2)  # the rest of the outage, not a wait for a result
        relay.resume()
        fault_proxy.clear()
        # THEN the extension goes on: the next invoke's items are delivered, by the same process
        result = box.invoke({"n": 2, "items": 2})
        assert result.status == 200 and result.function_error is None
        logs = "\n".join(line.text for line in box.logs)
        got = drain_queue(res.queue_url, 4, timeout=10)
        assert sorted((m["n"], m["i"]) for m in got) == [(1, 0), (1, 1), (2, 0), (2, 1)], logs[-3000:]
        logs = "\n".join(line.text for line in box.logs)
        assert "the Extensions API is gone" not in logs and "Traceback" not in logs, logs[-3000:]
        assert _ready_lines(box) == 1
    finally:
        box.stop()


def _layer_behind(relay: TcpRelay, built_layer: Path, tmp_path: Path) -> Path:
    """The built layer, its extension reaching the Runtime API through ``relay``."""
    layer = copy_layer(built_layer, tmp_path / "layer")
    runner = layer / "extensions" / "defer-runner"
    (layer / "real").mkdir()
    runner.rename(layer / "real" / "defer-runner")
    runner.write_text(f'#!/bin/sh\nAWS_LAMBDA_RUNTIME_API={relay.address} '
                      'exec "$(dirname "$0")/../real/defer-runner"\n')
    runner.chmod(0o755)
    return layer


def _relayed_box(built_layer, tmp_path, fault_proxy, res, **options) -> tuple:
    """A started sandbox whose extension reaches the Extensions API through a relay the test
    can cut, with AWS behind the fault proxy; (box, relay)."""
    port = free_port()
    relay = TcpRelay(("127.0.0.1", port))
    box = Sandbox(_layer_behind(relay, built_layer, tmp_path), FUNCTION_DIR, "app.handler", timeout_s=10,
                  echo=False, runtime_api_port=port,
                  env={**res.env(), "AWS_ENDPOINT_URL": fault_proxy.endpoint_url,
                       "DEFER_SOCKET": str(tmp_path / "defer.sock"),
                       "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}, **options).start()
    return box, relay
