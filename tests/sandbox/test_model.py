"""The typed model round-trips real captured payloads, and the REPORT line parses back."""
from __future__ import annotations

import pytest

from lambda_sandbox import InvokeEvent, Report, ShutdownEvent, TelemetryEvent, parse_extension_event
from lambda_sandbox.events import InitStart, PlatformReport, RuntimeDone
from lambda_sandbox.telemetry import SubscriptionError, parse_subscription

# Captured payloads quoted in /work/shared/reference/lambda-apis.md (prod 2024 and RIE probes).
CAPTURED_TELEMETRY = [
    {"time": "2024-07-01T08:54:54.125Z", "type": "platform.runtimeDone", "record": {
        "requestId": "b2de8fdb-259d-476f-9546-0b4822dce67a", "status": "success",
        "metrics": {"durationMs": 17.12, "producedBytes": 50},
        "spans": [{"durationMs": 1.613, "name": "responseLatency", "start": "2024-07-01T08:54:54.108Z"},
                  {"durationMs": 0.064, "name": "responseDuration", "start": "2024-07-01T08:54:54.109Z"},
                  {"durationMs": 15.246, "name": "runtimeOverhead", "start": "2024-07-01T08:54:54.110Z"}]}},
    {"time": "2024-07-01T08:54:54.130Z", "type": "platform.report", "record": {
        "requestId": "b2de8fdb-259d-476f-9546-0b4822dce67a", "status": "success",
        "metrics": {"durationMs": 17.493, "billedDurationMs": 18, "initDurationMs": 235.086,
                    "maxMemoryUsedMB": 75, "memorySizeMB": 128}}},
    {"time": "2024-07-01T08:54:54.000Z", "type": "function", "record": "a log line"},
]
CAPTURED_EVENTS = [
    {"eventType": "INVOKE", "deadlineMs": 1795715278126, "requestId": "b2fdcf78-da50-4eec-97d9-7c7425387622",
     "invokedFunctionArn": "arn:aws:lambda:us-east-1:012345678912:function:test_function"},
    {"eventType": "INVOKE", "deadlineMs": 676051, "requestId": "3da1f2dc-3222-475e-9205-e2e6c6318895",
     "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:ExtensionTest",
     "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-5f35ae12-0c0fec141ab77a00bc047aa2;Sampled=1"}},
    {"eventType": "SHUTDOWN", "deadlineMs": 1795715274273, "shutdownReason": "SandboxTerminated"},
]


@pytest.mark.parametrize("payload", CAPTURED_TELEMETRY, ids=lambda p: p["type"])
def test_telemetry_round_trip(payload):
    event = TelemetryEvent.from_dict(payload)
    assert event.to_dict() == payload
    if payload["type"] == "platform.runtimeDone":
        assert isinstance(event.record, RuntimeDone) and event.record.metrics.produced_bytes == 50
    if payload["type"] == "platform.report":
        assert isinstance(event.record, PlatformReport) and event.record.metrics.max_memory_used_mb == 75


@pytest.mark.parametrize("payload", CAPTURED_EVENTS, ids=lambda p: p["eventType"])
def test_extension_event_round_trip(payload):
    event = parse_extension_event(payload)
    assert isinstance(event, InvokeEvent if payload["eventType"] == "INVOKE" else ShutdownEvent)
    assert event.to_dict() == payload


def test_report_line_parses_back():
    report = Report("rid", 12.34, 13, 128, 40, 1000.5, init_ms=120.25, status="timeout", error_type="Sandbox.Timedout",
                    cpu_limit="0.289 vCPU")
    assert report.line().startswith("REPORT RequestId: rid\tDuration: 12.34 ms\tBilled Duration: 13 ms")
    assert Report.parse(report.line()) == report
    with pytest.raises(ValueError):
        Report.parse("START RequestId: x")


def _body(**buffering):
    return {"schemaVersion": "2022-12-13", "types": ["platform"], "buffering": buffering,
            "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/x"}}


@pytest.mark.parametrize("buffering", [{"maxItems": 1000}, {"maxItems": 10000}, {"maxBytes": 262144},
                                       {"maxBytes": 1048576}, {"timeoutMs": 25}, {"timeoutMs": 30000}, {}])
def test_buffering_limits_accepted(buffering):
    subscription = parse_subscription(_body(**buffering))
    assert (subscription.host, subscription.port, subscription.path) == ("127.0.0.1", 4243, "/x")


@pytest.mark.parametrize("body", [
    _body(maxItems=999), _body(maxBytes=262143), _body(timeoutMs=30001), _body(timeoutMs=True),
    {**_body(), "types": ["platform", "nope"]}, {**_body(), "types": []},
    {**_body(), "destination": {"protocol": "HTTP", "URI": "http://example.com:80/"}},
    {**_body(), "destination": {"protocol": "TCP", "port": 9999}}, {**_body(), "schemaVersion": "2020-01-01"},
    {**_body(), "schemaVersion": ["2022-12-13"]}, {**_body(), "schemaVersion": {}}, {**_body(), "schemaVersion": 20221213},
    {**_body(), "types": [["platform"]]}, {**_body(), "types": [{"platform": 1}]},
    {**_body(), "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:99999/"}},
])
def test_invalid_subscriptions_rejected(body):
    with pytest.raises(SubscriptionError):
        parse_subscription(body)


def test_schema_version_is_required_and_managed_instances_take_only_the_newest():
    body = _body()
    del body["schemaVersion"]
    with pytest.raises(SubscriptionError, match="schemaVersion"):
        parse_subscription(body)
    for version in ("2022-07-01", "2022-12-13"):
        assert parse_subscription({**body, "schemaVersion": version}).schema_version == version
        with pytest.raises(SubscriptionError, match="2025-01-29"):
            parse_subscription({**body, "schemaVersion": version}, managed=True)
    assert parse_subscription({**body, "schemaVersion": "2025-01-29"}, managed=True).schema_version == "2025-01-29"


def test_records_are_cut_to_the_subscribers_schema():
    start = TelemetryEvent.of(InitStart(phase="init", runtime_version="python:3.12.v1", function_name="f",
                                        function_version="$LATEST", instance_id="a" * 32,
                                        instance_max_memory=134217728))
    newest = start.to_dict("2025-01-29")["record"]
    assert newest["functionName"] == "f" and newest["instanceMaxMemory"] == 134217728
    assert start.to_dict("2022-12-13")["record"] == {"initializationType": "on-demand", "phase": "init",
                                                     "runtimeVersion": "python:3.12.v1"}
    assert start.to_dict("2022-07-01") == start.to_dict("2022-12-13")
    assert TelemetryEvent.from_dict(start.to_dict()) == start, "the newest shape parses back whole"
