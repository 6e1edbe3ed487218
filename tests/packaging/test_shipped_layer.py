"""What ships is what is tested: the layer zip from `serverless package`, unpacked as Lambda
unpacks it into /opt, runs the example API under RIE and in the sandbox; moto gets every
side effect."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from lambda_sandbox import Sandbox
from tests.conftest import REPO_ROOT
from tests.examples.conftest import EXAMPLE_DIR, http_events, order_created_queue
from tests.support.moto_server import drain_messages, drain_queue

from .conftest import unpack


@pytest.fixture
def shipped_layer(sls_package: Path, tmp_path: Path) -> Path:
    layer = unpack(sls_package / "deferRunner.zip", tmp_path / "opt")
    assert os.access(layer / "extensions" / "defer-runner", os.X_OK)
    return layer


@pytest.fixture
def shipped_function(sls_package: Path, tmp_path: Path) -> Path:
    """The example's zip as `make package` built it (dist/example-api.zip), unpacked as Lambda
    unpacks it into /var/task: the sandbox, as Lambda, lets it import only that, the layer and
    the runtime's packages (its dependencies are pure Python, so the python3.12 build runs here)."""
    return unpack(REPO_ROOT / "dist" / "example-api.zip", tmp_path / "task")


@pytest.fixture
def order_env(aws_resources, tmp_path):
    res = aws_resources()
    queue_url = order_created_queue(res)
    invoices = aws_resources().queue_url  # stands for the invoices worker's queue
    env = {"ORDERS_TOPIC_ARN": res.topic_arn, "FULFILMENT_QUEUE_URL": res.fifo_queue_url,
           "EVENT_BUS_NAME": res.bus_name, "DEFER_DLQ_URL": res.dlq_url, "INVOICES_QUEUE_URL": invoices,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}", "DEFER_SOCKET": str(tmp_path / "defer.sock"),
           "DEFER_JOURNAL_DIR": str(tmp_path / "journal"), "DEFER_RUNNER_PYTHON": sys.executable}
    return env, res, queue_url


def assert_side_effects_landed(res, events_queue: str, oid: str, env: dict) -> None:
    assert [m["order_id"] for m in drain_queue(res.topic_queue_url, 1, timeout=3)] == [oid]
    assert [json.loads(m["Body"])["order_id"] for m in drain_messages(res.fifo_queue_url, 1, timeout=3)] == [oid]
    assert [e["detail"]["order_id"] for e in drain_queue(events_queue, 1, timeout=3)] == [oid]
    (invoice,) = drain_queue(env["INVOICES_QUEUE_URL"], 1, timeout=3)  # the task on a queue
    assert invoice["task"] == "tasks:archive_invoice"


def test_the_packaged_layer_runs_the_example_under_rie(rie_factory, shipped_layer, order_env):
    env, res, events_queue = order_env
    rie = rie_factory(shipped_layer, EXAMPLE_DIR, "app.handler", env=env, timeout_s=10)
    status, reply, _ = rie.invoke_json(http_events.post_order(http_events.sample_order(1)))
    assert status == 200 and reply["statusCode"] == 201, reply
    assert_side_effects_landed(res, events_queue, json.loads(reply["body"])["id"], env)
    assert "defer-runner ready" in rie.logs()  # the extension came from the shipped zip


def test_the_packaged_layer_runs_the_packaged_example_in_the_sandbox(shipped_layer, shipped_function, order_env):
    env, res, events_queue = order_env
    with Sandbox(shipped_layer, shipped_function, "app.handler", timeout_s=10, env=env) as box:
        result = box.invoke(http_events.post_order(http_events.sample_order(2)))
        reply = result.json()
        assert result.status == 200 and reply["statusCode"] == 201, reply
        box.wait_for_report(result.request_id)
        assert_side_effects_landed(res, events_queue, json.loads(reply["body"])["id"], env)
