"""Fixtures for the orders API example: import it the way Lambda does (its folder as task root)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

from tests.conftest import REPO_ROOT

EXAMPLE_DIR = REPO_ROOT / "examples" / "api_gateway"
_MODULES = ("app", "orders", "tasks", "validation")


def _load_http_events() -> ModuleType:
    """examples/api_gateway/http_events.py by path: inside pytest, `examples` is this test package."""
    spec = importlib.util.spec_from_file_location("orders_api_http_events", EXAMPLE_DIR / "http_events.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


http_events = _load_http_events()


@dataclass
class LambdaContext:
    """The attributes Powertools' Logger reads from the real context object."""

    aws_request_id: str = "req-0001"
    function_name: str = "orders-api"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:orders-api"
    log_group_name: str = "/aws/lambda/orders-api"
    log_stream_name: str = "2024/01/01/[$LATEST]0"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


TARGETS = {
    "ORDERS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:orders",
    "FULFILMENT_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/fulfilment.fifo",
    "EVENT_BUS_NAME": "orders-bus",
    "INVOICES_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/invoices",
}


@pytest.fixture
def example_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``app`` imported fresh from examples/api_gateway, with its own SQLite file and, in moto,
    its own invoices bucket (a captured archive_invoice run by ``run_tasks`` writes there)."""
    import uuid

    import boto3

    for key, value in TARGETS.items():
        monkeypatch.setenv(key, value)
    bucket = f"invoices-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    monkeypatch.setenv("INVOICES_BUCKET", bucket)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'orders.db'}")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ShopTest")
    saved = {name: sys.modules.pop(name) for name in _MODULES if name in sys.modules}
    sys.path.insert(0, str(EXAMPLE_DIR))
    try:
        import app  # noqa: PLC0415 - imported as Lambda would, from the task root

        yield app
    finally:
        sys.path.remove(str(EXAMPLE_DIR))
        for name in _MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def order_created_queue(res) -> str:
    """A queue that receives the example's OrderCreated events (a rule on the test bus)."""
    import json as _json

    from tests.support.moto_server import client

    events, sqs = client("events"), client("sqs")
    queue_url = sqs.create_queue(QueueName=f"{res.prefix}-order-created")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"{res.prefix}-order-created", EventBusName=res.bus_name, State="ENABLED",
                    EventPattern=_json.dumps({"source": ["shop.orders"], "detail-type": ["OrderCreated"]}))
    events.put_targets(Rule=f"{res.prefix}-order-created", EventBusName=res.bus_name,
                       Targets=[{"Id": "q", "Arn": queue_arn}])
    return queue_url
