"""What consumers receive besides the payload: the item id to deduplicate on (``defer_id``)
and the trace of the invoke that deferred it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from handler_lib import defer
from handler_lib._dispatch import DISPATCHER
from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_messages

FUNCTIONS = Path(__file__).parent / "functions"


@pytest.fixture
def inline(tmp_path, monkeypatch):
    """Delivery in this process, through the same sinks the extension uses, to moto."""
    monkeypatch.setenv("DEFER_MODE", "inline")
    monkeypatch.setenv("DEFER_SOCKET", str(tmp_path / "nobody.sock"))
    DISPATCHER.reset()
    yield
    DISPATCHER.reset()


def test_sqs_and_sns_messages_carry_the_item_id_as_defer_id(inline, aws_resources):
    res = aws_resources()
    ids = {}

    @defer
    def handler(event, context):
        ids["sqs"] = defer.sqs(res.queue_url, {"n": 1}, attributes={"kind": "order"})
        ids["sqs_plain"] = defer.sqs(res.queue_url, {"n": 2})
        ids["sns"] = defer.sns(res.topic_arn, {"n": 3}, attributes={f"a{i}": i for i in range(9)})
        ids["fifo"] = defer.sqs(res.fifo_queue_url, {"n": 4}, group_id="g")

    handler({}, SimpleNamespace(aws_request_id="r1"))

    def defer_ids(url, expected):
        return {json.loads(m["Body"])["n"]: m["MessageAttributes"]["defer_id"]
                for m in drain_messages(url, expected, timeout=3)}

    got = defer_ids(res.queue_url, 2)
    assert got[1] == {"DataType": "String", "StringValue": ids["sqs"]}
    assert got[2]["StringValue"] == ids["sqs_plain"]
    assert defer_ids(res.topic_queue_url, 1)[3]["StringValue"] == ids["sns"]
    assert defer_ids(res.fifo_queue_url, 1)[4]["StringValue"] == ids["fifo"]


TRACES = ["Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1",
          "Root=1-67891234-0123456789abcdef01234567;Parent=463ac35c9f6413ad;Sampled=0"]


def test_items_carry_the_trace_of_the_invoke_that_deferred_them(built_layer, aws_resources, fault_proxy, tmp_path):
    """Through the sandbox (which hands X-Amzn-Trace-Id to the runtime as _X_AMZN_TRACE_ID),
    the layer's extension and the fault proxy in front of moto."""
    res = aws_resources()
    env = {**res.env(), "AWS_ENDPOINT_URL": fault_proxy.endpoint_url,
           "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, FUNCTIONS / "traced", "app.handler", timeout_s=10, env=env).start()
    try:
        for n, trace in enumerate(TRACES):
            result = box.invoke({"tag": n}, headers={"X-Amzn-Trace-Id": trace})
            assert result.json() == {"trace": trace}
            box.wait_for_report(result.request_id)
    finally:
        box.stop()

    # Read at the proxy: moto 5.2.5 keeps AWSTraceHeader from SendMessage but drops it from
    # SendMessageBatch entries, so a receive would not show it.
    sends = [json.loads(body)["Entries"] for _, body in fault_proxy.raw_requests("SendMessageBatch")]
    assert [e["MessageSystemAttributes"]["AWSTraceHeader"] for entries in sends for e in entries] == [
        {"DataType": "String", "StringValue": trace} for trace in TRACES]
    assert len(drain_messages(res.queue_url, 2, timeout=3)) == 2
    publishes = fault_proxy.raw_requests("PublishBatch")
    assert [headers.get("X-Amzn-Trace-Id") for headers, _ in publishes] == TRACES  # one invoke per batch here
    puts = [json.loads(body)["Entries"] for _, body in fault_proxy.raw_requests("PutEvents")]
    assert [entry["TraceHeader"] for entries in puts for entry in entries] == TRACES
