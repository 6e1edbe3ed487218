"""Runtime, Extensions and Telemetry API behaviour: validation, documented errors, and
telemetry delivered while the extension is still inside the invoke."""
from __future__ import annotations

import http.client
import json
import re
from typing import Any, Dict, Optional, Tuple

from lambda_sandbox import ErrorType
from lambda_sandbox.filesystem import namespaces_available
from tests.support.waiting import wait_until

QUICK = """
def handler(event, context):
    print("function says hi", context.aws_request_id)
    return {"ok": True}
"""
FAST_TELEMETRY = {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25}


def _call(address: str, method: str, path: str, body: Optional[bytes] = None,
          headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any]:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_runtimedone_reaches_extension_within_the_invoke(lambda_dirs, sandbox_factory):
    # GIVEN an extension subscribed with timeoutMs=25 that waits for runtimeDone before next
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("tel", telemetry=FAST_TELEMETRY, wait_runtime_done=3.0)
    box = sandbox_factory(lambda_dirs, echo=False, init="eager")
    assert records.of("subscribed")[0]["status"] == 200
    # WHEN invoked
    result = box.invoke({})
    report = box.wait_for_report(result.request_id)
    # THEN it saw this invoke's runtimeDone before calling next, with metrics and spans
    seen = records.of("runtime_done_during_invoke")
    assert seen == [{**seen[0], "requestId": result.request_id, "seen": True}]
    assert report.post_runtime_extensions_ms < 1000
    done = [e for e in records.telemetry("platform.runtimeDone") if e["record"]["requestId"] == result.request_id]
    record = done[0]["record"]
    assert record["status"] == "success" and record["metrics"]["producedBytes"] == len(result.body)
    assert {s["name"] for s in record["spans"]} == {"responseLatency", "responseDuration", "runtimeOverhead"}
    assert [e["record"]["requestId"] for e in records.telemetry("platform.start")] == [result.request_id]
    assert records.telemetry("platform.initStart"), "init events are replayed to a subscriber"


def test_platform_report_arrives_after_the_next_thaw(lambda_dirs, sandbox_factory):
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("tel", telemetry=FAST_TELEMETRY)
    box = sandbox_factory(lambda_dirs, echo=False)
    first = box.invoke({})
    box.wait_for_report(first.request_id)

    def delivered() -> bool:
        return any(e["record"]["requestId"] == first.request_id for e in records.telemetry("platform.report"))

    # Delivery pauses while frozen; back-to-back invokes can each end inside the 25 ms
    # buffer window, so the report may come with the next thaw or a later one.
    for _ in range(20):
        box.invoke({})
        if delivered():
            break
    wait_until(delivered, 5, message="no platform.report after 20 thaws")
    report = next(e["record"] for e in records.telemetry("platform.report")
                  if e["record"]["requestId"] == first.request_id)
    assert set(report["metrics"]) >= {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"}
    assert "extensionOverhead" in {s["name"] for s in report["spans"]}


def test_function_logs_are_delivered_as_function_telemetry(lambda_dirs, sandbox_factory, tmp_path):
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("tel", telemetry=FAST_TELEMETRY, telemetry_types=["function"],
                                              invoke_sleep_s=0.3)
    box = sandbox_factory(lambda_dirs, echo=False)
    result = box.invoke({})
    box.wait_for_log(f"function says hi {result.request_id}", timeout=5, source="function")
    wait_until(lambda: any(f"function says hi {result.request_id}" in e["record"]
                           for e in records.telemetry("function")), 5, message="no function line delivered")
    assert not records.telemetry("platform.start"), "only the subscribed types are delivered"


def test_invalid_telemetry_buffering_is_a_validation_error(lambda_dirs, sandbox_factory):
    lambda_dirs.function(QUICK)
    bad = [{"maxItems": 999}, {"maxItems": 10001}, {"maxBytes": 1024}, {"maxBytes": 2_000_000},
           {"timeoutMs": 24}, {"timeoutMs": 30001}, {"timeoutMs": "100"}]
    records = lambda_dirs.recording_extension("tel", telemetry=FAST_TELEMETRY, probe_buffering=bad)
    sandbox_factory(lambda_dirs, echo=False, init="eager")
    probes = records.of("probe_subscribe")
    assert len(probes) == len(bad)
    for probe in probes:
        assert probe["status"] == 400, probe
        assert probe["body"]["errorType"] == ErrorType.VALIDATION
    assert records.of("subscribed")[0]["status"] == 200


def test_telemetry_subscription_is_closed_after_init(lambda_dirs, sandbox_factory):
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("tel")
    box = sandbox_factory(lambda_dirs, echo=False, init="eager")
    ext_id = records.of("registered")[0]["ext_id"]
    body = json.dumps({"schemaVersion": "2022-12-13", "types": ["platform"], "buffering": FAST_TELEMETRY,
                       "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:1234/"}}).encode()
    status, reply = _call(box.runtime_api, "PUT", "/2022-07-01/telemetry", body,
                          {"Lambda-Extension-Identifier": ext_id})
    assert status == 403 and reply["errorType"] == ErrorType.SUBSCRIPTION_CLOSED


def test_register_with_a_wrong_name_and_next_without_identifier(lambda_dirs, sandbox_factory):
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("probe", probe_errors=True, probe_bad_name=True)
    box = sandbox_factory(lambda_dirs, echo=False, init="eager")
    register = records.of("probe_register")[0]
    assert register["status"] == 403 and register["body"]["errorType"] == ErrorType.INVALID_EVENT_TYPE
    assert "ShutdownEventNotSupportedForInternalExtension" in register["body"]["errorMessage"]
    by_label = {p["label"]: p for p in records.of("probe_next")}
    assert by_label["missing"]["status"] == 403
    assert by_label["missing"]["body"]["errorType"] == ErrorType.MISSING_EXTENSION_ID
    assert by_label["invalid"]["body"]["errorType"] == ErrorType.INVALID_EXTENSION_ID
    # a well-formed but unknown identifier, and a registration after init
    status, reply = _call(box.runtime_api, "GET", "/2020-01-01/extension/event/next",
                          headers={"Lambda-Extension-Identifier": "00000000-0000-4000-8000-000000000000"})
    assert status == 403 and reply["errorType"] == ErrorType.UNKNOWN_EXTENSION_ID
    status, reply = _call(box.runtime_api, "POST", "/2020-01-01/extension/register", b'{"events":["INVOKE"]}',
                          {"Lambda-Extension-Name": "probe"})
    assert status == 403 and reply["errorType"] == ErrorType.REGISTRATION_CLOSED


def test_runtime_api_rejects_unknown_request_ids(lambda_dirs, sandbox_factory):
    lambda_dirs.function(QUICK)
    box = sandbox_factory(lambda_dirs, echo=False)
    result = box.invoke({})
    box.wait_for_report(result.request_id)
    for path in (f"/2018-06-01/runtime/invocation/{result.request_id}/response",
                 "/2018-06-01/runtime/invocation/not-a-request/error"):
        status, reply = _call(box.runtime_api, "POST", path, b"{}")
        assert status == 400 and reply["errorType"] == ErrorType.INVALID_REQUEST_ID
    status, reply = _call(box.runtime_api, "POST", "/2018-06-01/runtime/init/error", b"{}")
    assert status == 403


def test_response_over_6_mib_is_rejected(lambda_dirs, sandbox_factory):
    lambda_dirs.function("""
        def handler(event, context):
            return "x" * (6 * 1024 * 1024 + 10)
    """)
    box = sandbox_factory(lambda_dirs, echo=False)
    result = box.invoke({})
    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == ErrorType.RESPONSE_TOO_LARGE


def test_runtime_and_extension_environments(lambda_dirs, sandbox_factory, tmp_path):
    (lambda_dirs.opt / "python").mkdir(parents=True)
    (lambda_dirs.opt / "python" / "layer_mod.py").write_text("VALUE = 'from the layer'\n")
    lambda_dirs.function("""
        import os, sys, layer_mod

        def handler(event, context):
            return {"layer": layer_mod.VALUE, "root": os.environ["LAMBDA_TASK_ROOT"], "cwd": os.getcwd(),
                    "handler": os.environ["_HANDLER"], "custom": os.environ.get("CUSTOM"),
                    "first_path": sys.path[1] if sys.path[0] in ("", os.getcwd()) else sys.path[0],
                    "name": context.function_name, "memory": context.memory_limit_in_mb,
                    "remaining": context.get_remaining_time_in_millis()}
    """)
    keys = ["LAMBDA_TASK_ROOT", "_HANDLER", "AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME", "CUSTOM"]
    records = lambda_dirs.recording_extension("envcheck", env_keys=keys)
    box = sandbox_factory(lambda_dirs, env={"CUSTOM": "yes"}, memory_mb=256, timeout_s=5, echo=False)
    reply = box.invoke({}).json()
    task = "/var/task" if namespaces_available() else str(lambda_dirs.task.resolve())
    assert reply["layer"] == "from the layer" and reply["root"] == task and reply["cwd"] == task
    assert reply["handler"] == "app.handler" and reply["custom"] == "yes"
    assert reply["name"] == "test_function" and int(reply["memory"]) == 256
    assert 3000 < reply["remaining"] <= 5000
    ext_env = records.of("started")[0]["env"]
    assert ext_env["LAMBDA_TASK_ROOT"] is None and ext_env["_HANDLER"] is None
    assert ext_env["AWS_LAMBDA_RUNTIME_API"] == box.runtime_api and ext_env["CUSTOM"] == "yes"


def test_last_report_is_delivered_during_shutdown(lambda_dirs, sandbox_factory):
    # GIVEN a telemetry subscriber that, like the aws-samples one, lingers a little on SHUTDOWN
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("tel", telemetry=FAST_TELEMETRY, shutdown_sleep_s=0.5)
    box = sandbox_factory(lambda_dirs, echo=False)
    result = box.invoke({})
    box.wait_for_report(result.request_id)
    # WHEN the sandbox stops
    box.stop()
    # THEN the frozen-in platform.report of the last invoke was delivered after the thaw
    assert [e["record"]["requestId"] for e in records.telemetry("platform.report")] == [result.request_id]
    assert records.of("shutdown_done")


def test_extension_that_never_registers_fails_init_within_budget(lambda_dirs, sandbox_factory):
    lambda_dirs.function(QUICK)
    lambda_dirs.extension("silent", "#!/bin/sh\nexec sleep 1000\n")
    box = sandbox_factory(lambda_dirs, init_budget_s=1, timeout_s=1, echo=False)
    result = box.invoke({})
    assert result.function_error == "Unhandled"
    assert result.json()["errorType"] == ErrorType.TIMED_OUT
    assert "waiting for silent" in result.json()["errorMessage"]
    assert 2 <= result.elapsed_s < 4, "the init (1 s) and its suppressed retry (the 1 s timeout)"
    assert box.pids() == [], "the failed environment was torn down"
    assert box.wait_for_report(result.request_id).status == "error"


def test_runtime_done_reports_a_timeout_and_a_crash(lambda_dirs, sandbox_factory):
    # GIVEN a telemetry subscriber, and a function that can overrun its timeout or die
    lambda_dirs.function("""
        import os, time

        def handler(event, context):
            if event.get("die"):
                os._exit(9)
            time.sleep(event.get("sleep", 0))
            return {"ok": True}
    """)
    records = lambda_dirs.recording_extension("tel", telemetry=FAST_TELEMETRY, shutdown_sleep_s=0.3)
    box = sandbox_factory(lambda_dirs, timeout_s=1, echo=False)
    timed_out = box.invoke({"sleep": 3})
    crashed = box.invoke({"die": True})

    def done(request_id: str) -> Dict[str, Any]:
        found = [e["record"] for e in records.telemetry("platform.runtimeDone")
                 if e["record"]["requestId"] == request_id]
        return found[0] if found else {}

    # THEN each got its platform.runtimeDone, delivered before the extension was shut down
    timeout_record = wait_until(lambda: done(timed_out.request_id), 5, message="no runtimeDone for the timeout")
    assert timeout_record["status"] == "timeout" and timeout_record["errorType"] == ErrorType.TIMED_OUT
    assert timeout_record["metrics"]["durationMs"] >= 1000
    crash_record = wait_until(lambda: done(crashed.request_id), 5, message="no runtimeDone for the crash")
    assert crash_record["status"] == "failure" and crash_record["errorType"] == ErrorType.RUNTIME_EXIT


def test_init_over_budget_is_retried_inside_the_invoke(lambda_dirs, sandbox_factory):
    # GIVEN an extension whose init takes 1.5 s, over a 1 s init budget
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("slowinit", init_sleep_s=1.5, telemetry=FAST_TELEMETRY)
    box = sandbox_factory(lambda_dirs, init_budget_s=1, timeout_s=5, echo=False)
    # WHEN invoked, THEN the init is retried within the invoke (suppressed init), which succeeds
    result = box.invoke({})
    assert result.status == 200 and result.json() == {"ok": True}, result.body
    assert 2.5 <= result.elapsed_s < 4.5
    assert len(records.of("registered")) == 2
    starts = wait_until(lambda: [e["record"]["phase"] for e in records.telemetry("platform.initStart")] or None, 5,
                        message="no platform.initStart delivered")
    assert starts[-1] == "invoke"
    assert box.invoke({}).json() == {"ok": True}, "the environment is warm after it"


V2025_INIT_FIELDS = {"functionName", "functionVersion", "instanceId", "instanceMaxMemory"}


def test_records_follow_each_subscribers_schema_version(lambda_dirs, sandbox_factory):
    # GIVEN three subscribers, one per schema version, and one that names no version
    lambda_dirs.function(QUICK)
    by_version = {version: lambda_dirs.recording_extension(f"tel-{version}", telemetry=FAST_TELEMETRY,
                                                           schema_version=version, invoke_sleep_s=0.2)
                  for version in ("2022-07-01", "2022-12-13", "2025-01-29")}
    unversioned = lambda_dirs.recording_extension("tel-none", telemetry=FAST_TELEMETRY, schema_version=None)
    box = sandbox_factory(lambda_dirs, echo=False, init="eager", memory_mb=256, function_name="shapes")
    # THEN a subscription without schemaVersion is refused (it is required), the others accepted
    refused = unversioned.of("subscribed")[0]
    assert refused["status"] == 400 and refused["body"]["errorType"] == ErrorType.VALIDATION
    assert "schemaVersion" in refused["body"]["errorMessage"]
    assert all(records.of("subscribed")[0]["status"] == 200 for records in by_version.values())
    result = box.invoke({})

    def first(records: Any, kind: str) -> Dict[str, Any]:
        return wait_until(lambda: next((e["record"] for e in records.telemetry(kind)), None), 5,
                          message=f"no {kind} delivered")

    # AND only 2025-01-29 subscribers get the function and instance fields of initStart and
    # platform.start; the records are otherwise the same
    new_start = first(by_version["2025-01-29"], "platform.initStart")
    assert V2025_INIT_FIELDS <= set(new_start)
    assert (new_start["functionName"], new_start["functionVersion"]) == ("shapes", "$LATEST")
    assert new_start["instanceMaxMemory"] == 256 * 1024 * 1024 and new_start["instanceId"].endswith("[$LATEST]", 0, -32)
    new_invoke = first(by_version["2025-01-29"], "platform.start")
    assert new_invoke["requestId"] == result.request_id and new_invoke["functionArn"].endswith(":function:shapes")
    for version in ("2022-07-01", "2022-12-13"):
        old_start = first(by_version[version], "platform.initStart")
        assert not V2025_INIT_FIELDS & set(old_start), (version, old_start)
        assert {k: v for k, v in new_start.items() if k not in V2025_INIT_FIELDS} == old_start
        assert "functionArn" not in first(by_version[version], "platform.start")


STREAM_FUNCTION = """
import os


def handler(event, context):
    if event.get("crash"):
        os._exit(1)
    return {"stream": context.log_stream_name}
"""


def test_each_environment_has_its_own_log_stream_and_instance(lambda_dirs, sandbox_factory):
    # GIVEN a function that reports its log stream, and a 2025-01-29 subscriber
    lambda_dirs.function(STREAM_FUNCTION)
    records = lambda_dirs.recording_extension("tel", telemetry=FAST_TELEMETRY, schema_version="2025-01-29")
    box = sandbox_factory(lambda_dirs, echo=False)
    first = box.invoke({}).json()["stream"]
    # WHEN the environment is reset (a crash) and the next invoke initialises a new one
    assert box.invoke({"crash": True}).function_error == "Unhandled"
    second = box.invoke({}).json()["stream"]
    # THEN each environment writes to a stream of its own, named as Lambda names them, and its
    # initStart's instanceId is that stream (as RIE's Managed Instances build sets it)
    assert first != second
    for stream in (first, second):
        assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", stream), stream
    wait_until(lambda: len(records.telemetry("platform.initStart")) >= 2, 5, message="one initStart only")
    assert [e["record"]["instanceId"] for e in records.telemetry("platform.initStart")] == [first, second]


def test_buffered_telemetry_is_delivered_before_shutdown(lambda_dirs, sandbox_factory):
    # GIVEN a subscriber that buffers for 1 s and exits as soon as it gets SHUTDOWN
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("tel", telemetry={"maxItems": 1000, "maxBytes": 262144,
                                                                "timeoutMs": 1000})
    box = sandbox_factory(lambda_dirs, echo=False)
    result = box.invoke({})
    box.wait_for_report(result.request_id)
    # WHEN the environment shuts down well within the buffering time
    box.stop()
    # THEN what was buffered (this invoke's platform.report) reached it before SHUTDOWN, as Lambda
    # flushes telemetry before it shuts the extensions down
    assert records.of("shutdown_done")
    assert [e["record"]["requestId"] for e in records.telemetry("platform.report")] == [result.request_id]
