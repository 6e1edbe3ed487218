"""The W3C trace context of the OpenTelemetry span current at a defer call: captured at the call,
sent as traceparent/tracestate String attributes where the caller's leave room, counted when not
(real opentelemetry-sdk spans; the sinks' requests built, not sent: delivery is in integration)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from handler_lib import _items, defer, wire
from handler_lib.config import Config
from handler_lib.engine.drain import Drainer
from handler_lib.engine.pending import PendingQueue
from handler_lib.engine.sinks import SnsSink, SqsSink
from handler_lib.engine.tasks import TaskRunner
from handler_lib.testing import capture

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/q"
TOPIC = "arn:aws:sns:us-east-1:123456789012:t"
TRACER = TracerProvider().get_tracer("tests")  # not the global provider: nothing else sees it


def hex_ids(span) -> tuple:
    """The span's trace id and its id with its flags (the SDK sets sampled, and random: 03)."""
    context = span.get_span_context()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}-{int(context.trace_flags):02x}"


def test_sqs_and_sns_items_carry_the_span_current_at_the_call():
    with capture() as items, TRACER.start_as_current_span("handler") as span:
        defer.sqs(QUEUE, {"n": 1})
        with TRACER.start_as_current_span("inner") as inner:
            defer.sns(TOPIC, {"n": 2})
    trace_id, span_id = hex_ids(span)
    _, inner_id = hex_ids(inner)
    assert items.sqs[0].traceparent == f"00-{trace_id}-{span_id}"
    assert items.sns[0].traceparent == f"00-{trace_id}-{inner_id}"  # the call's span, not the first one's
    assert items.sqs[0].tracestate is None


def test_no_current_span_no_context():
    with capture() as items:
        defer.sqs(QUEUE, "m")
        with trace.use_span(trace.INVALID_SPAN):
            defer.sns(TOPIC, "m")
    assert [i.traceparent for i in items] == [None, None]


def test_tracestate_and_an_unsampled_span_as_w3c_writes_them():
    context = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=False,
                          trace_flags=TraceFlags(0), trace_state=TraceState([("congo", "t61rcWkgMzE"), ("rojo", "00f0")]))
    with capture() as items, trace.use_span(NonRecordingSpan(context)):
        defer.sqs(QUEUE, "m")
    (item,) = items
    assert item.traceparent == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    assert item.tracestate == "congo=t61rcWkgMzE,rojo=00f0"
    entry = SqsSink(lambda s: None).entry(item, "0")
    assert entry["MessageAttributes"]["tracestate"] == {"DataType": "String", "StringValue": item.tracestate}


def test_each_thread_sends_its_own_span():
    seen = {}

    def work(name: str) -> None:
        with TRACER.start_as_current_span(name) as span:
            got = _items.sqs_item("r", QUEUE, "m", group_id=None, dedup_id=None, delay_seconds=None,
                                  attributes=None)
            seen[name] = (got.traceparent, hex_ids(span))

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 4 and len({parent for parent, _ in seen.values()}) == 4
    for parent, (trace_id, span_id) in seen.values():
        assert parent == f"00-{trace_id}-{span_id}"


def build(items, sink):
    return [sink.entry(item, str(n)) for n, item in enumerate(items)]


@pytest.mark.parametrize("sink_class", [SqsSink, SnsSink])
def test_the_context_never_displaces_the_callers_attributes(sink_class):
    nine = {f"a{n}": str(n) for n in range(9)}
    eight = {f"a{n}": str(n) for n in range(8)}
    send = defer.sqs if sink_class is SqsSink else defer.sns
    context = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1), trace_state=TraceState([("k", "v")]))
    with capture() as items, trace.use_span(NonRecordingSpan(context)):
        send(QUEUE if sink_class is SqsSink else TOPIC, "full", attributes=nine)
        send(QUEUE if sink_class is SqsSink else TOPIC, "one slot", attributes=eight)
        send(QUEUE if sink_class is SqsSink else TOPIC, "own", attributes={"traceparent": "00-mine"})
        send(QUEUE if sink_class is SqsSink else TOPIC, "room")
    sink = sink_class(lambda s: None)
    full, one_slot, own, room = build(items, sink)
    assert full["MessageAttributes"] == {"defer_id": {"DataType": "String", "StringValue": items[0].id},
                                         **{k: {"DataType": "String", "StringValue": v} for k, v in nine.items()}}
    assert list(one_slot["MessageAttributes"])[-1] == "traceparent" and len(one_slot["MessageAttributes"]) == 10
    assert own["MessageAttributes"]["traceparent"]["StringValue"] == "00-mine"
    assert "tracestate" not in own["MessageAttributes"]
    assert set(room["MessageAttributes"]) == {"defer_id", "traceparent", "tracestate"}
    assert [sink.trace_skipped(i) for i in items] == [True, True, False, False]  # one slot: tracestate left out
    # the batch is sized with what goes out
    for item, entry in zip(items, (full, one_slot, own, room)):
        attrs = entry["MessageAttributes"]
        body = entry.get("MessageBody", entry.get("Message"))
        expected = len(body) + sum(len(k) + 6 + len(v["StringValue"]) for k, v in attrs.items())
        assert sink.entry_size(item) == expected


def test_the_context_never_takes_a_message_past_the_service_limit():
    context = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1))
    body = "x" * (262_144 - 200)
    with capture() as items, trace.use_span(NonRecordingSpan(context)):
        defer.sns(TOPIC, body, attributes={"pad": "p" * (200 - 40 - 9)})
        defer.sns(TOPIC, "small")
    sink = SnsSink(lambda s: None)
    full, small = build(items, sink)
    assert "traceparent" not in full["MessageAttributes"] and sink.entry_size(items[0]) <= 262_144
    assert "traceparent" in small["MessageAttributes"]
    assert sink.trace_skipped(items[0]) and not sink.trace_skipped(items[1])


class RecordingSqs(SqsSink):
    def __init__(self) -> None:
        super().__init__(lambda s: None)
        self.sent = []

    def call(self, target, entries):
        self.sent += entries
        return {"Failed": []}


def test_the_drain_counts_items_delivered_without_their_context():
    context = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1))
    with capture() as items, trace.use_span(NonRecordingSpan(context)):
        defer.sqs(QUEUE, "a", attributes={f"a{n}": "v" for n in range(9)})
        defer.sqs(QUEUE, "b")
    with capture() as plain:
        defer.sqs(QUEUE, "c", attributes={f"a{n}": "v" for n in range(9)})
    queue, sink = PendingQueue(), RecordingSqs()
    drainer = Drainer(queue, {"sqs": sink}, TaskRunner(), Config())
    try:
        for item in [*items, *plain]:
            queue.add(item)
        report = drainer.drain(stop_at=time.monotonic() + 10)
    finally:
        drainer.shutdown()
    assert report.delivered == 3 and report.trace_context_skipped == 1
    assert report.as_dict()["trace_context_skipped"] == 1
    assert ["traceparent" in e["MessageAttributes"] for e in sink.sent] == [False, True, False]


def test_the_context_survives_the_wire_and_old_frames_read_without_it():
    item = wire.SqsItem("i", "r", 1, QUEUE, "m", traceparent="00-a-b-01", tracestate="k=v")
    assert wire.decode(wire.encode(item)[4:]) == item
    plain = wire.SnsItem("i", "r", 1, TOPIC, "m")
    assert "tparent" not in plain.to_map()  # frames without a context are as small as before
    assert wire.decode(wire.encode(plain)[4:]) == plain


def test_opentelemetry_is_never_imported_by_the_library():
    code = ("import sys; from handler_lib import defer; from handler_lib.testing import capture\n"
            "with capture() as items:\n    defer.sqs('https://sqs/q', 'm'); defer.sns('arn:aws:sns:r:1:t', 'm')\n"
            "assert items[0].traceparent is None\n"
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'handler_lib._otel'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
