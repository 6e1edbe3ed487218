"""examples/fastapi with its dependencies bundled as a deployment package: in the sandbox and under RIE.

The package is built as a deployment would build it (``pip install --target`` of the example's
requirements.txt, then its code), and runs with the built layer: BackgroundTasks answer after
the response, and the message one defers lands within the same invoke.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lambda_sandbox import Sandbox
from tests.conftest import REPO_ROOT
from tests.examples.conftest import http_events
from tests.support.moto_server import drain_queue

EXAMPLE_DIR = REPO_ROOT / "examples" / "fastapi"


def _load_shipping_api() -> Any:
    spec = importlib.util.spec_from_file_location("fastapi_example_shipping_api", EXAMPLE_DIR / "shipping_api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ShippingApi


ShippingApi = _load_shipping_api()


@pytest.fixture(scope="session")
def fastapi_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deployment package: the example's requirements installed beside app.py."""
    build = tmp_path_factory.mktemp("fastapi-package")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "--target", str(build), "-r", str(EXAMPLE_DIR / "requirements.txt")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.copy(EXAMPLE_DIR / "app.py", build / "app.py")
    assert (build / "fastapi").is_dir() and (build / "mangum").is_dir()
    return build


@pytest.fixture
def shipping_api():
    api = ShippingApi(delay_s=1.0).start()
    yield api
    api.stop()


def function_env(res, api, tmp_path: Path) -> dict[str, str]:
    return {**res.env(), "SHIPPING_API_URL": api.url, "SHIPPING_QUEUE_URL": res.queue_url,
            "ORDERS_DB": str(tmp_path / "orders.db"), "DEFER_SOCKET": str(tmp_path / "defer.sock"),
            "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}


def reply_of(payload: Any) -> tuple[int, dict[str, Any]]:
    return int(payload["statusCode"]), json.loads(payload["body"])


def test_in_the_sandbox_a_one_second_background_task_runs_after_the_response(
        built_layer, fastapi_package, aws_resources, shipping_api, tmp_path):
    res = aws_resources()
    box = Sandbox(built_layer, fastapi_package, "app.handler", timeout_s=10, memory_mb=512,
                  env=function_env(res, shipping_api, tmp_path)).start()
    try:
        warm = box.invoke(http_events.post_order(http_events.sample_order(1)))  # lifespan, imports
        assert reply_of(warm.json())[0] == 201
        box.wait_idle()
        result = box.invoke(http_events.post_order(http_events.sample_order(2)))
        answered = time.time()
        status, order = reply_of(result.json())
        assert status == 201 and order["total_cents"] == 2 * 499 + 3 * 1250
        assert result.elapsed_s < 0.1, f"answered in {result.elapsed_s * 1000:.0f} ms"  # not after the 1 s
        assert order["id"] not in {q["order_id"] for q in shipping_api.quotes}  # the task was still running
        following = box.invoke(http_events.get_order(order["id"]))
        assert reply_of(following.json()) == (200, order)
        quote = next(q for q in shipping_api.quotes if q["order_id"] == order["id"])
        assert answered < quote["answered"] < answered + 1.5  # after the response, before the next answer
        report = box.wait_for_report(result.request_id)
        assert report.post_runtime_extensions_ms >= 950  # the environment stayed thawed for it
        landed = drain_queue(res.queue_url, 2, timeout=3)  # the message the task deferred, same invoke
        assert sorted(m["order_id"] for m in landed) == sorted([warm_id(warm), order["id"]])
        assert all(m["type"] == "ShippingQuoted" and m["quote_ms"] >= 1000 for m in landed)
        logs = "\n".join(line.text for line in box.logs)
        assert logs.count("Application startup") <= 1 and "raised" not in logs
    finally:
        box.stop()


def warm_id(result) -> str:
    return reply_of(result.json())[1]["id"]


def test_under_rie_every_background_task_runs_and_nothing_is_lost(
        rie_factory, built_layer, fastapi_package, aws_resources, tmp_path):
    res = aws_resources()
    api = ShippingApi(delay_s=0.2).start()
    try:
        rie = rie_factory(built_layer, fastapi_package, "app.handler", env=function_env(res, api, tmp_path))
        ids = []
        for n in range(3):
            status, payload, _ = rie.invoke_json(http_events.post_order(http_events.sample_order(n)))
            assert status == 200 and reply_of(payload)[0] == 201, payload
            ids.append(reply_of(payload)[1]["id"])
        bad = rie.invoke_json(http_events.post_order({"email": "nope", "items": []}))[1]
        assert reply_of(bad)[0] == 422  # FastAPI's validation answer, through Mangum's translation
        landed = drain_queue(res.queue_url, 3, timeout=5)
        assert sorted(m["order_id"] for m in landed) == sorted(ids)
        assert sorted(q["order_id"] for q in api.quotes) == sorted(ids)
        assert drain_queue(res.dlq_url, 0, timeout=0.5) == []
    finally:
        api.stop()
