"""The edges of what ``defer.sqs`` / ``defer.sns`` now accept go through (review finding 18).

The call refuses what SQS and SNS would refuse (tests/unit/test_r3_input_service_rules.py);
this shows the other side: what it still accepts, at the very edge of each rule, is sent by
the production sinks (botocore's client, which checks its service model, over real HTTP to
moto) and arrives intact. moto is lenient, so it proves nothing about what is refused; it
does prove that nothing accepted here is mangled or refused on the way.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, Dict, List

import pytest

from handler_lib import defer
from handler_lib._dispatch import DISPATCHER
from tests.support.moto_server import drain_messages

PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
EDGE_NAMES = {"a": "v", "A-b_c.d": "v", "x" * 256: "v", "AWSx": "v", "aws_x": "v", "Amazonia": "v", "a.b.c": "v",
              "Z9": "v"}
EDGE_VALUES = {"s": "\t\ufffd\U0010ffff\ud7ff\ue000", "b": b"\x00\xff", "z": 0, "f": -0.0, "i": -(2 ** 63),
               "u": 2 ** 64 - 1, "big": 1e126, "small": 1e-128, "neg": -1.5e100}
# moto 5.2.5 forwards an SNS Binary attribute to a raw SQS subscription in a form its own
# ReceiveMessage then fails on (the message stays in flight, and with it the rest of that
# receive's batch): the Binary edge is shown on SQS only.
SNS_EDGE_VALUES = {name: value for name, value in EDGE_VALUES.items() if not isinstance(value, bytes)}
EDGE_BODIES: List[Any] = [
    "\t\n\r",
    " ",
    "\ud7ff\ue000\ufffd\U00010000\U0010ffff😀\x7f\x80\x9f",
    {"nul": "\x00", "esc": "\x1b", "max": "\U0010ffff", "private": "\ue000", "n": 1},  # JSON escapes C0
]


@pytest.fixture
def inline(tmp_path, monkeypatch):
    """Delivery in this process, through the same sinks the extension uses, to moto."""
    monkeypatch.setenv("DEFER_MODE", "inline")
    monkeypatch.setenv("DEFER_SOCKET", str(tmp_path / "nobody.sock"))
    DISPATCHER.reset()
    yield
    DISPATCHER.reset()


def as_sent(body: Any) -> str:
    return body if isinstance(body, str) else json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def attribute(value: Any) -> Dict[str, Any]:
    """The MessageAttributeValue a consumer receives for one of ours."""
    if isinstance(value, bytes):
        return {"DataType": "Binary", "BinaryValue": value}
    if isinstance(value, (int, float)):
        return {"DataType": "Number", "StringValue": repr(value)}
    return {"DataType": "String", "StringValue": value}


def received(url: str, expected: int) -> List[Dict[str, Any]]:
    messages = drain_messages(url, expected, timeout=10)
    assert len(messages) == expected, [m["Body"][:80] for m in messages]
    return messages


def test_what_the_call_accepts_at_the_edges_is_accepted_and_delivered_intact(inline, aws_resources):
    res = aws_resources()
    sent: Dict[str, Dict[str, Any]] = {"sqs": {}, "sns": {}}

    @defer
    def handler(event, context):
        for service, send, target in (("sqs", defer.sqs, res.queue_url), ("sns", defer.sns, res.topic_arn)):
            sent[service][send(target, "names at the edges", attributes=EDGE_NAMES)] = ("names at the edges", EDGE_NAMES)
            values = EDGE_VALUES if service == "sqs" else SNS_EDGE_VALUES
            sent[service][send(target, "values at the edges", attributes=values)] = ("values at the edges", values)
            for body in EDGE_BODIES:
                sent[service][send(target, body)] = (as_sent(body), {})
        sent["sns"][defer.sns(res.topic_arn, "subject", subject="Ünïcödé subject, punctuation!?")] = ("subject", {})
        defer.sqs(res.fifo_queue_url, "fifo punctuation", group_id=PUNCTUATION, dedup_id=PUNCTUATION)
        defer.sqs(res.fifo_queue_url, "fifo longest", group_id="g" * 128, dedup_id="0aZ" + "d" * 125)
        defer.sns(res.fifo_topic_arn, "fifo punctuation", group_id=PUNCTUATION, dedup_id=PUNCTUATION)
        defer.sns(res.fifo_topic_arn, "fifo longest", group_id="g" * 128, dedup_id="0aZ" + "d" * 125)

    handler({}, SimpleNamespace(aws_request_id="r-edges"))

    for service, url in (("sqs", res.queue_url), ("sns", res.topic_queue_url)):
        for message in received(url, len(sent[service])):
            attrs = message.get("MessageAttributes", {})
            body, given = sent[service][attrs["defer_id"]["StringValue"]]
            assert message["Body"] == body, (service, body)
            assert {k: v for k, v in attrs.items() if k != "defer_id"} == {
                name: attribute(value) for name, value in given.items()}, (service, body)

    for url in (res.fifo_queue_url, res.fifo_topic_queue_url):
        groups = {m["Body"]: m["Attributes"]["MessageGroupId"] for m in received(url, 2)}
        assert groups == {"fifo punctuation": PUNCTUATION, "fifo longest": "g" * 128}, url
