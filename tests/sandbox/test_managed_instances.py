"""The sandbox's managed-instances mode: N invokes at once through awslambdaric's worker
processes, extensions refused INVOKE, no freeze, per-invoke report lines, SHUTDOWN on stop."""
from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from lambda_sandbox import Report
from lambda_sandbox.errors import SandboxConfigError
from lambda_sandbox.sandbox import Sandbox
from tests.support.processes import process_state
from tests.support.waiting import wait_until

# Every invoke leaves a file in a shared directory, then waits (bounded) until `expect` files
# are there: they all return True only if that many invokes ran at the same time.
RENDEZVOUS = """
import os, time

def handler(event, context):
    folder = os.environ["MEET_DIR"]
    open(os.path.join(folder, context.aws_request_id), "w").close()
    deadline = time.monotonic() + 5
    met = False
    while time.monotonic() < deadline:
        if len(os.listdir(folder)) >= event["expect"]:
            met = True
            break
        time.sleep(0.01)
    return {"met": met, "pid": os.getpid(),
            "type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
            "max": os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY")}
"""


def _invoke_all(box: Sandbox, payloads: list) -> list:
    with ThreadPoolExecutor(len(payloads)) as pool:
        return list(pool.map(box.invoke, payloads))


def test_serves_max_concurrency_invokes_at_once(lambda_dirs, sandbox_factory, tmp_path):
    # GIVEN a function whose invokes only succeed when 4 of them run at the same time
    meet = tmp_path / "meet"
    meet.mkdir()
    lambda_dirs.function(RENDEZVOUS)
    box = sandbox_factory(lambda_dirs, echo=False, mode="managed-instances", max_concurrency=4,
                          env={"MEET_DIR": str(meet)}, timeout_s=10)
    # WHEN 4 invokes arrive together
    results = _invoke_all(box, [{"expect": 4}] * 4)
    # THEN they ran at once, in 4 worker processes, each told it runs on Managed Instances
    bodies = [r.json() for r in results]
    assert all(r.status == 200 and r.function_error is None for r in results)
    assert all(b["met"] for b in bodies), bodies
    assert len({b["pid"] for b in bodies}) == 4
    assert {(b["type"], b["max"]) for b in bodies} == {("lambda-managed-instances", "4")}
    # AND each invoke has its START, END and REPORT line; nothing was ever frozen
    texts = [line.text for line in box.logs]
    for result in results:
        assert f"START RequestId: {result.request_id} Version: $LATEST" in texts
        assert f"END RequestId: {result.request_id}" in texts
        report = box.wait_for_report(result.request_id)
        assert report.status == "success" and report.post_runtime_extensions_ms == 0
        assert any(t.startswith(f"REPORT RequestId: {result.request_id}") for t in texts)
    assert not box.frozen
    for pid in box.pids():
        assert process_state(pid) != "T"


def test_on_demand_serves_one_at_a_time(lambda_dirs, sandbox_factory, tmp_path):
    # The rendezvous above fails on-demand: it is what tells the modes apart
    meet = tmp_path / "meet"
    meet.mkdir()
    lambda_dirs.function(RENDEZVOUS)
    box = sandbox_factory(lambda_dirs, echo=False, env={"MEET_DIR": str(meet)}, timeout_s=10)
    results = _invoke_all(box, [{"expect": 2}] * 2)
    assert sorted(r.json()["met"] for r in results) == [False, True]


def test_more_invokes_than_workers_queue_for_a_free_worker(lambda_dirs, sandbox_factory, tmp_path):
    lambda_dirs.function("def handler(event, context):\n    return event\n")
    box = sandbox_factory(lambda_dirs, echo=False, mode="managed-instances", max_concurrency=2)
    results = _invoke_all(box, [{"n": n} for n in range(12)])
    assert sorted(r.json()["n"] for r in results) == list(range(12))
    assert len({r.request_id for r in results}) == 12
    assert len(box.reports) == 12 and all(isinstance(r, Report) for r in box.reports)


def test_extension_registering_invoke_is_refused(lambda_dirs, sandbox_factory):
    # GIVEN an extension that asks for INVOKE, as every on-demand extension does
    lambda_dirs.function("def handler(event, context):\n    return {}\n")
    records = lambda_dirs.recording_extension("asks-invoke", events=["INVOKE", "SHUTDOWN"])
    box = sandbox_factory(lambda_dirs, echo=False, mode="managed-instances", max_concurrency=2)
    # THEN its registration is refused as Managed Instances refuse it, and (it exits) init fails
    reply = records.of("registered")[0]
    assert reply["status"] == 403
    assert reply["body"] == {"errorType": "Extension.InvalidEventType",
                             "errorMessage": "INVOKE: ErrorInvalidEventType"}
    assert box.invoke({}).function_error == "Unhandled"


def test_shutdown_only_extension_gets_no_invoke_and_shutdown_on_stop(lambda_dirs, sandbox_factory):
    lambda_dirs.function("def handler(event, context):\n    return {}\n")
    records = lambda_dirs.recording_extension("shutdown-only", events=["SHUTDOWN"],
                                              env_keys=["AWS_LAMBDA_INITIALIZATION_TYPE"])
    box = sandbox_factory(lambda_dirs, echo=False, mode="managed-instances", max_concurrency=2)
    assert all(r.status == 200 for r in _invoke_all(box, [{}] * 4))
    assert records.of("registered")[0]["status"] == 200
    assert records.of("started")[0]["env"] == {"AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances"}
    box.stop()
    assert records.events("INVOKE") == []
    assert [e["shutdownReason"] for e in records.events("SHUTDOWN")] == ["spindown"]


def test_telemetry_takes_only_the_newest_schema_and_reports_no_runtime_done(lambda_dirs, sandbox_factory):
    # GIVEN two SHUTDOWN-only subscribers: one on the newest schema, one on 2022-12-13
    lambda_dirs.function("def handler(event, context):\n    return {}\n")
    fast = {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25}
    newest = lambda_dirs.recording_extension("tel-new", events=["SHUTDOWN"], telemetry=fast,
                                             schema_version="2025-01-29")
    older = lambda_dirs.recording_extension("tel-old", events=["SHUTDOWN"], telemetry=fast,
                                            schema_version="2022-12-13")
    box = sandbox_factory(lambda_dirs, echo=False, mode="managed-instances", max_concurrency=2)
    # THEN only the newest is accepted, as on Managed Instances
    assert newest.of("subscribed")[0]["status"] == 200
    refused = older.of("subscribed")[0]
    assert refused["status"] == 400 and "2025-01-29" in refused["body"]["errorMessage"]
    # WHEN invoked, THEN it gets platform.start and platform.report, but never runtimeDone
    results = _invoke_all(box, [{}] * 3)
    ids = {r.request_id for r in results}
    wait_until(lambda: {e["record"]["requestId"] for e in newest.telemetry("platform.report")} >= ids, 5,
               message="no platform.report for every invoke")
    assert {e["record"]["requestId"] for e in newest.telemetry("platform.start")} >= ids
    assert newest.telemetry("platform.runtimeDone") == []
    start = newest.telemetry("platform.initStart")[0]["record"]
    assert start["initializationType"] == "lambda-managed-instances" and start["instanceId"]
    assert newest.telemetry("platform.initReport")[0]["record"]["initializationType"] == "lambda-managed-instances"


def test_timeout_is_reported_not_enforced(lambda_dirs, sandbox_factory, tmp_path):
    # GIVEN a function that runs past its timeout and then writes a file
    done = tmp_path / "done"
    lambda_dirs.function(f"""
import time

def handler(event, context):
    if event.get("slow"):
        time.sleep(1.5)
        open({str(done)!r}, "w").close()
    return {{}}
""")
    box = sandbox_factory(lambda_dirs, echo=False, mode="managed-instances", max_concurrency=2, timeout_s=1,
                          share=[lambda_dirs.root, tmp_path])
    result = box.invoke({"slow": True})
    # THEN the caller is told it timed out, but the worker is not killed: it finishes its work
    assert result.function_error == "Unhandled" and "Task timed out" in result.json()["errorMessage"]
    wait_until(done.exists, timeout=5, message="the worker finished after the timeout")
    after = box.invoke({})
    assert after.status == 200 and after.function_error is None


def test_options_are_checked(lambda_dirs):
    lambda_dirs.function("def handler(event, context):\n    return {}\n")
    with pytest.raises(SandboxConfigError, match="managed-instances"):
        Sandbox(lambda_dirs.opt, lambda_dirs.task, "app.handler", max_concurrency=2)
    with pytest.raises(SandboxConfigError, match="mode"):
        Sandbox(lambda_dirs.opt, lambda_dirs.task, "app.handler", mode="provisioned")
    with pytest.raises(SandboxConfigError, match="1..64"):
        Sandbox(lambda_dirs.opt, lambda_dirs.task, "app.handler", mode="managed-instances", max_concurrency=0)


def test_cli_takes_the_mode():
    from lambda_sandbox.cli import parse_args

    args = parse_args(["--opt", "o", "--task", "t", "--handler", "a.b", "--mode", "managed-instances",
                       "--max-concurrency", "8"])
    assert (args.mode, args.max_concurrency) == ("managed-instances", 8)
    assert json.dumps(parse_args(["--opt", "o", "--task", "t", "--handler", "a.b"]).mode) == '"on-demand"'


CRASHING_EXTENSION = """
import http.client, json, os, sys, threading, time

MARKER = {marker!r}
API = os.environ["AWS_LAMBDA_RUNTIME_API"]


def call(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(API)
    conn.request(method, path, body, headers or {{}})
    reply = conn.getresponse()
    reply.read()
    return reply.getheader("Lambda-Extension-Identifier")


def crash_when_told():
    while not os.path.exists(MARKER):
        time.sleep(0.01)
    os.unlink(MARKER)
    os._exit(3)


ext_id = call("POST", "/2020-01-01/extension/register", json.dumps({{"events": ["SHUTDOWN"]}}),
              {{"Lambda-Extension-Name": os.path.basename(sys.argv[0])}})
threading.Thread(target=crash_when_told, daemon=True).start()
call("GET", "/2020-01-01/extension/event/next", headers={{"Lambda-Extension-Identifier": ext_id}})
"""


def test_an_extension_crash_terminates_the_environment_and_the_next_invoke_gets_a_new_one(
        lambda_dirs, sandbox_factory, tmp_path):
    marker = tmp_path / "crash-now"
    lambda_dirs.function("import os\n\ndef handler(event, context):\n    return {'pid': os.getppid()}\n")
    lambda_dirs.extension("crasher", f"#!{sys.executable}\n" + CRASHING_EXTENSION.format(marker=str(marker)))
    box = sandbox_factory(lambda_dirs, echo=False, mode="managed-instances", max_concurrency=2,
                          share=[lambda_dirs.root, tmp_path])
    first = box.invoke({})
    assert first.function_error is None
    # WHEN the extension crashes between invokes
    marker.touch()
    wait_until(lambda: any("Extension.Crash" in line.text for line in box.logs), 5, message="no crash seen")
    # THEN the next invoke is served by a new environment (a new runtime), after a reset
    second = box.invoke({})
    assert second.status == 200 and second.function_error is None
    assert second.json()["pid"] != first.json()["pid"]
    texts = [line.text for line in box.logs]
    assert "lambda_sandbox: resetting the environment (reason: failure)" in texts
    assert sum(t.startswith("INIT_START") for t in texts) == 2
