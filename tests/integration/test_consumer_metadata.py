"""What consumers receive besides the payload: the item id to deduplicate on (``defer_id``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from handler_lib import defer
from handler_lib._dispatch import DISPATCHER
from tests.support.moto_server import drain_messages


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
