"""The lean transport against botocore, differentially: the same items through the engine's
real sinks, once with each transport (``ClientFactory``, DEFER_TRANSPORT=auto and =botocore),
through the fault proxy to moto server; the outcomes per entry, what landed in the queues and
the requests on the wire must be the same. Faults (throttling, 5xx, failed entries, refused and
dropped connections) come from the proxy, for both alike.

Each transport sends to a set of resources of its own (fresh queues, topics and bus), so that
what landed can be compared queue for queue.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Callable, Dict, List, Sequence, Tuple
from urllib.parse import parse_qsl

import pytest

from handler_lib import wire
from handler_lib.config import Config
from handler_lib.engine.clients import ClientFactory
from handler_lib.engine.outcome import TRANSPORT
from handler_lib.engine.sinks import make_sinks
from tests.support.moto_server import AwsResources, drain_messages

TRANSPORTS = ("lean", "botocore")
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ATTRIBUTES: Dict[str, wire.AttributeValue] = {"s": "text ✓", "n": 42, "f": 1.5, "b": b"\x00\x01\xfe\xff"}


def sqs_items(res: AwsResources) -> List[wire.SqsItem]:
    q, fifo = res.queue_url, res.fifo_queue_url
    return [
        wire.SqsItem("s0", "r", 0, q, "x"),
        wire.SqsItem("s1", "r", 0, q, "héllo ✓ \U0001f600 ñ <&>", attributes=ATTRIBUTES),
        wire.SqsItem("s2", "r", 0, q, json.dumps({"pad": "y" * 200_000})),
        wire.SqsItem("s3", "r", 0, q, "{\"traced\": true}", trace=TRACE, traceparent=PARENT, tracestate="k=v"),
        wire.SqsItem("s4", "r", 0, q, "delayed", delay_seconds=0, attributes={"only": "one"}),
        wire.SqsItem("f0", "r", 0, fifo, "fifo one", group_id="g1", dedup_id="d1"),
        wire.SqsItem("f1", "r", 0, fifo, "fifo two", group_id="g1", attributes={"n": -7}),
    ]


def sns_items(res: AwsResources) -> List[wire.SnsItem]:
    t, fifo = res.topic_arn, res.fifo_topic_arn
    return [
        wire.SnsItem("n0", "r", 0, t, "plain"),
        # (moto's SNS to SQS fan-out drops a whole batch that holds a Binary attribute: the
        # requests test below covers Binary attributes for SNS)
        wire.SnsItem("n1", "r", 0, t, "ünïcode ✓ \U0001f600 a+b=c&d", subject="Sübject",
                     attributes={k: v for k, v in ATTRIBUTES.items() if not isinstance(v, bytes)}),
        wire.SnsItem("n2", "r", 0, t, "z" * 100_000, trace=TRACE, traceparent=PARENT),
        wire.SnsItem("n3", "r", 0, fifo, "fifo", group_id="g", dedup_id="dd"),
    ]


def event_items(res: AwsResources) -> List[wire.EventItem]:
    return [
        wire.EventItem("e0", "r", 0, "OrderCreated", json.dumps({"order": 1}), res.event_source, res.bus_name),
        wire.EventItem("e1", "r", 0, "Ünïcode", json.dumps({"note": "✓ \U0001f600"}, ensure_ascii=False),
                       res.event_source, res.bus_name, resources=["arn:aws:s3:::b"], trace=TRACE),
    ]


@pytest.fixture
def transports(fault_proxy, monkeypatch: pytest.MonkeyPatch, aws_resources) -> Dict[str, Tuple[Dict[str, Any], AwsResources]]:
    """Sinks and fresh resources per transport, both calling AWS through the fault proxy."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint_url)
    pairs = {}
    for name in TRANSPORTS:
        factory = ClientFactory(Config(transport="auto" if name == "lean" else "botocore"))
        pairs[name] = (make_sinks(factory), aws_resources())
    assert getattr(pairs["lean"][0]["sqs"].client, "lean", False)
    assert not getattr(pairs["botocore"][0]["sqs"].client, "lean", False)
    return pairs


def send_all(sinks: Dict[str, Any], res: AwsResources) -> List[Tuple[str, bool, str, bool, bool, str]]:
    """Every item through its sink, a batch per target, as the drain sends them; the outcomes."""
    outcomes = []
    for kind, items in (("sqs", sqs_items(res)), ("sns", sns_items(res)), ("event", event_items(res))):
        by_target: Dict[str, List[Any]] = {}
        for item in items:
            by_target.setdefault(item.target, []).append(item)
        for target, batch in by_target.items():
            for outcome in sinks[kind].send(target, batch):
                # a connection error's words are each transport's own; botocore says when it
                # retried (throttling, 5xx: once, inside the call; the lean transport leaves it
                # to the engine)
                message = "" if outcome.code == TRANSPORT else re.sub(r" \(reached max retries: \d+\)", "",
                                                                      outcome.message)
                outcomes.append((outcome.item_id, outcome.ok, outcome.code, outcome.retryable,
                                 outcome.uses_attempt, message))
    return outcomes


def landed(res: AwsResources) -> Dict[str, List[Dict[str, Any]]]:
    """What each queue received, comparable across resources (ids, times, ARNs left out)."""
    found: Dict[str, List[Dict[str, Any]]] = {}
    for name, url, expected in (("queue", res.queue_url, 5), ("fifo", res.fifo_queue_url, 2),
                                ("topic", res.topic_queue_url, 3), ("fifo_topic", res.fifo_topic_queue_url, 1),
                                ("events", res.event_queue_url, 2)):
        messages = drain_messages(url, expected, timeout=3 if expected else 0.5)
        found[name] = sorted((_message(name, m) for m in messages), key=json.dumps)
    return found


def _message(queue: str, message: Dict[str, Any]) -> Dict[str, Any]:
    attributes = {k: {f: (base64.b64encode(v).decode() if isinstance(v, bytes) else v) for f, v in a.items()}
                  for k, a in (message.get("MessageAttributes") or {}).items()}
    system = message.get("Attributes") or {}
    body: Any = message["Body"]
    if queue == "events":
        event = json.loads(body)
        body = {k: event.get(k) for k in ("detail-type", "source", "detail", "resources")}
        body["source"] = "<source>"
    return {"body": body, "attributes": attributes,
            "system": {k: system.get(k) for k in ("AWSTraceHeader", "MessageGroupId", "MessageDeduplicationId")}}


def _same(outcomes: Dict[str, Any]) -> None:
    assert outcomes["lean"] == outcomes["botocore"]


def test_the_same_items_have_the_same_outcomes_and_land_the_same(transports) -> None:
    # GIVEN no faults WHEN each transport sends the same items
    outcomes = {name: send_all(*transports[name]) for name in TRANSPORTS}
    # THEN every entry succeeded on both, and the queues received the same messages
    _same(outcomes)
    assert all(ok for _, ok, *_ in outcomes["lean"]) and len(outcomes["lean"]) == 13
    got = {name: landed(transports[name][1]) for name in TRANSPORTS}
    assert got["lean"] == got["botocore"]
    assert {k: len(v) for k, v in got["lean"].items()} == {"queue": 5, "fifo": 2, "topic": 3, "fifo_topic": 1,
                                                            "events": 2}
    (traced,) = [m for m in got["lean"]["queue"] if m["body"] == "{\"traced\": true}"]
    assert traced["attributes"]["traceparent"]["StringValue"] == PARENT  # (moto keeps no AWSTraceHeader
    # of a batch entry: the requests test compares MessageSystemAttributes on the wire)


FAULTS: List[Tuple[str, Callable[[Any], None]]] = [
    ("entries fail (receiver)", lambda p: [p.fail_entries(a, indexes={1}) for a in ("SendMessageBatch", "PublishBatch", "PutEvents")]),
    ("entries fail (sender)", lambda p: [p.fail_entries(a, indexes={0}, code="InvalidParameterValue", message="bad",
                                                        sender_fault=True) for a in ("SendMessageBatch", "PublishBatch")]),
    ("throttled", lambda p: p.throttle()),
    ("5xx", lambda p: p.error(None, "InternalError", 500)),
    ("503, no message", lambda p: p.error(None, "ServiceUnavailable", 503, message="")),
    ("endpoint down", lambda p: p.refuse_connections()),
]


@pytest.mark.parametrize("name,fault", FAULTS, ids=[f[0] for f in FAULTS])
def test_faults_have_the_same_outcomes(transports, fault_proxy, name: str, fault: Callable[[Any], None]) -> None:
    fault(fault_proxy)
    try:
        outcomes = {transport: send_all(*transports[transport]) for transport in TRANSPORTS}
    finally:
        fault_proxy.clear()
        fault_proxy.accept_connections()
    _same(outcomes)
    assert not all(ok for _, ok, *_ in outcomes["lean"])


def test_a_dropped_keep_alive_connection_is_sent_again_by_both(transports, fault_proxy) -> None:
    # GIVEN both transports hold open keep-alive connections to the endpoint
    first = {name: send_all(*transports[name]) for name in TRANSPORTS}
    assert all(ok for name in TRANSPORTS for _, ok, *_ in first[name])
    # WHEN the endpoint drops every open connection (and listens again at once)
    fault_proxy.refuse_connections()
    fault_proxy.accept_connections()
    # THEN the next calls still succeed on both: one quick retry on a new connection
    again = {name: send_all(*transports[name]) for name in TRANSPORTS}
    _same(again)
    assert all(ok for _, ok, *_ in again["lean"])


@pytest.mark.parametrize("action,call", [
    ("SendMessageBatch", lambda c, r: c.send_message_batch(QueueUrl=r.queue_url, Entries=[
        {"Id": "0", "MessageBody": "héllo ✓", "DelaySeconds": 0, "MessageAttributes": {
            "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}, "n": {"DataType": "Number", "StringValue": "1"}},
         "MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE}}},
        {"Id": "1", "MessageBody": "two"}])),
    ("SendMessage", lambda c, r: c.send_message(QueueUrl=r.fifo_queue_url, MessageBody="letter ✓",
                                                MessageGroupId="g", MessageDeduplicationId="d")),
    ("PublishBatch", lambda c, r: c.publish_batch(TopicArn=r.topic_arn, PublishBatchRequestEntries=[
        {"Id": "0", "Message": "a b&c=d ✓", "Subject": "s", "MessageAttributes": {
            "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}, "s": {"DataType": "String", "StringValue": "x y"}}},
        {"Id": "1", "Message": "two"}])),
    ("PutEvents", lambda c, r: c.put_events(Entries=[
        {"Source": r.event_source, "DetailType": "t", "Detail": "{\"a\": \"✓\"}", "EventBusName": r.bus_name,
         "Resources": ["arn:aws:s3:::b"], "TraceHeader": TRACE}])),
])
def test_the_requests_on_the_wire_are_botocores(transports, fault_proxy, action: str, call) -> None:
    # GIVEN the same call, to the same resources, through each transport's client
    res = transports["lean"][1]
    service = {"SendMessageBatch": "sqs", "SendMessage": "sqs", "PublishBatch": "sns", "PutEvents": "event"}[action]
    replies = {}
    for name in TRANSPORTS:
        replies[name] = call(transports[name][0][service].client, res)
    # THEN the proxy saw the same method, target, content type and (parsed) body from both
    assert fault_proxy.request_lines(action) == [("POST", "/"), ("POST", "/")]
    (lean_headers, lean_body), (boto_headers, boto_body) = fault_proxy.raw_requests(action)
    for header in ("X-Amz-Target", "Content-Type", "x-amzn-query-mode"):
        assert lean_headers.get(header) == boto_headers.get(header), header
    if action == "PublishBatch":
        assert sorted(parse_qsl(lean_body.decode())) == sorted(parse_qsl(boto_body.decode()))
    else:
        assert json.loads(lean_body) == json.loads(boto_body)
    # AND the replies have the same keys, without the metadata of each request
    shape = {name: sorted(k for k in reply if k != "ResponseMetadata") for name, reply in replies.items()}
    assert shape["lean"] == shape["botocore"]
    assert replies["lean"]["ResponseMetadata"]["HTTPStatusCode"] == 200
