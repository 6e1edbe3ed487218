"""What RIE also implements, run against both RIE and the sandbox with one extension:
the register reply, INVOKE and SHUTDOWN shapes, the 403s for a missing or invalid
identifier, and SHUTDOWN on stop. (Early response, telemetry and freeze are where the
two differ on purpose; they are tested in test_lifecycle / test_apis.)"""
from __future__ import annotations

import http.client
import json
import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Tuple

import pytest

from lambda_sandbox import ErrorType, InvokeEvent, ShutdownEvent, parse_extension_event
from lambda_sandbox.testing import LambdaDirs, Records
from tests.support.waiting import wait_until

FUNCTION = """
def handler(event, context):
    return {"request_id": context.aws_request_id, "arn": context.invoked_function_arn}
"""
TIMEOUT_S = 5


@dataclass
class Target:
    name: str
    invoke: Callable[[Any], Tuple[int, Any]]
    stop: Callable[[], None]
    records: Records


@pytest.fixture(params=["rie", "sandbox"])
def target(request: pytest.FixtureRequest, lambda_dirs: LambdaDirs) -> Target:
    lambda_dirs.function(FUNCTION)
    records = lambda_dirs.recording_extension("conform", probe_errors=True)
    if request.param == "rie":
        rie = request.getfixturevalue("rie_factory")(lambda_dirs.opt, lambda_dirs.task, "app.handler",
                                                     timeout_s=TIMEOUT_S)

        def invoke(payload: Any) -> Tuple[int, Any]:
            status, body, _ = rie.invoke_json(payload)
            return status, body

        return Target("rie", invoke, rie.stop, records)
    box = request.getfixturevalue("sandbox_factory")(lambda_dirs, timeout_s=TIMEOUT_S, echo=False)

    def invoke_box(payload: Any) -> Tuple[int, Any]:
        result = box.invoke(payload)
        return result.status, result.json()

    return Target("sandbox", invoke_box, box.stop, records)


def test_init_waits_for_the_first_invoke(target: Target) -> None:
    assert not target.records.of("started"), "nothing is launched before the first invoke"
    status, _ = target.invoke({})
    assert status == 200
    assert target.records.of("registered")
    # the sandbox answers when the runtime posts, maybe before the extension wrote its record
    wait_until(lambda: target.records.events("INVOKE"), 5, message="no INVOKE recorded")


def test_register_reply_shape(target: Target) -> None:
    target.invoke({})  # RIE launches extensions on the first invoke
    registered = target.records.of("registered")[0]
    assert registered["status"] == 200
    assert set(registered["body"]) == {"functionName", "functionVersion", "handler"}
    assert registered["body"]["functionName"] == "test_function"
    assert registered["body"]["functionVersion"] == "$LATEST"
    assert registered["body"]["handler"] == "app.handler"
    uuid.UUID(registered["ext_id"])


def test_invoke_event_shape(target: Target) -> None:
    before_ms = time.time() * 1000
    status, body = target.invoke({"x": 1})
    assert status == 200
    wait_until(lambda: target.records.events("INVOKE"), 5, message="no INVOKE recorded")
    raw = target.records.events("INVOKE")[0]
    assert {"eventType", "deadlineMs", "requestId", "invokedFunctionArn"} <= set(raw)
    event = parse_extension_event(raw)
    assert isinstance(event, InvokeEvent)
    assert event.request_id == body["request_id"]
    assert event.invoked_function_arn == body["arn"]
    assert re.fullmatch(r"arn:aws:lambda:[a-z0-9-]+:\d{12}:function:test_function", event.invoked_function_arn)
    assert before_ms < event.deadline_ms <= before_ms + TIMEOUT_S * 1000 + 1000


def test_next_identifier_errors(target: Target) -> None:
    target.invoke({})
    probes = {p["label"]: p for p in target.records.of("probe_next")}
    assert probes["missing"]["status"] == 403
    assert probes["missing"]["body"]["errorType"] == ErrorType.MISSING_EXTENSION_ID
    assert probes["invalid"]["status"] == 403
    assert probes["invalid"]["body"]["errorType"] == ErrorType.INVALID_EXTENSION_ID


def test_shutdown_on_stop(target: Target) -> None:
    target.invoke({})
    wait_until(lambda: target.records.events("INVOKE"), 5, message="no INVOKE recorded")
    stopped_at_ms = time.time() * 1000
    target.stop()
    wait_until(lambda: target.records.events("SHUTDOWN"), 5, message="no SHUTDOWN recorded")
    event = parse_extension_event(target.records.events("SHUTDOWN")[0])
    assert isinstance(event, ShutdownEvent)
    # the documented budget: deadline about 2 s after the stop
    assert 1000 <= event.deadline_ms - stopped_at_ms <= 2600
    expected = {"rie": "SandboxTerminated", "sandbox": "spindown"}[target.name]
    assert event.shutdown_reason == expected
    assert target.records.of("shutdown_done")


INTERNAL_EXTENSION_FUNCTION = """
import http.client, json, os, threading, time

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
SEEN = []


def call(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(API)
    conn.request(method, path, json.dumps(body) if body is not None else None, headers or {})
    reply = conn.getresponse()
    return reply.status, dict(reply.getheaders()), json.loads(reply.read() or b"null")


REFUSED = call("POST", "/2020-01-01/extension/register", {"events": ["INVOKE", "SHUTDOWN"]},
               {"Lambda-Extension-Name": "in-process-shutdown"})
STATUS, HEADERS, _ = call("POST", "/2020-01-01/extension/register", {"events": ["INVOKE"]},
                          {"Lambda-Extension-Name": "in-process"})


def loop():
    while True:
        status, _, event = call("GET", "/2020-01-01/extension/event/next",
                                headers={"Lambda-Extension-Identifier": HEADERS["Lambda-Extension-Identifier"]})
        SEEN.append(event["requestId"])
        time.sleep(0.3)  # work after the response: the invoke ends when this thread calls next


threading.Thread(target=loop, daemon=True).start()


def handler(event, context):
    return {"registered": STATUS, "refused": [REFUSED[0], REFUSED[2]], "seen": list(SEEN),
            "request_id": context.aws_request_id}
"""


@pytest.mark.parametrize("where", ["rie", "sandbox"])
def test_internal_extension_gets_invoke_and_no_shutdown(where: str, lambda_dirs: LambdaDirs,
                                                        request: pytest.FixtureRequest) -> None:
    lambda_dirs.function(INTERNAL_EXTENSION_FUNCTION)
    if where == "rie":
        rie = request.getfixturevalue("rie_factory")(lambda_dirs.opt, lambda_dirs.task, "app.handler", timeout_s=5)

        def invoke() -> Any:
            return rie.invoke_json({})[1]
    else:
        box = request.getfixturevalue("sandbox_factory")(lambda_dirs, timeout_s=5, echo=False)

        def invoke() -> Any:
            result = box.invoke({})
            assert box.wait_for_report(result.request_id).post_runtime_extensions_ms >= 250
            return result.json()
    first = invoke()
    assert first["registered"] == 200, first
    status, body = first["refused"]
    assert status == 403 and body["errorType"] == ErrorType.INVALID_EVENT_TYPE, body
    assert "ShutdownEventNotSupportedForInternalExtension" in body["errorMessage"]
    second = invoke()
    # the thread got the first INVOKE (and, by the time the second ran, had called next)
    assert first["request_id"] in second["seen"]


def _other_architecture_binary() -> bytes:
    """A copy of /bin/true marked for the other Lambda architecture (arm64 here if x86_64, and back)."""
    data = bytearray(Path("/bin/true").read_bytes())
    machine = int.from_bytes(data[18:20], "little")
    data[18:20] = (183 if machine == 62 else 62).to_bytes(2, "little")  # EM_AARCH64, EM_X86_64
    return bytes(data)


LAUNCH_FAILURES = {  # the extension's content and mode, and how execve fails on it
    "crlf": (b"#!/bin/sh\r\necho never\r\n", 0o755, "no such file or directory"),  # the interpreter is "/bin/sh\r"
    "no-interpreter": (b"#!/nonexistent/python3\nprint('never')\n", 0o755, "no such file or directory"),
    "no-shebang": (b"echo never\n", 0o755, "exec format error"),
    "not-executable": (b"#!/bin/sh\necho never\n", 0o644, "permission denied"),  # a layer zipped without modes
    "other-architecture": (_other_architecture_binary(), 0o755, "exec format error"),  # built for arm64 or x86_64
}


@pytest.mark.parametrize("where", ["rie", "sandbox"])
@pytest.mark.parametrize("kind", sorted(LAUNCH_FAILURES))
def test_extension_that_cannot_start_is_a_launch_error(where: str, kind: str, lambda_dirs: LambdaDirs,
                                                       request: pytest.FixtureRequest) -> None:
    # GIVEN an extension whose exec fails (a CRLF shebang is the usual way to get one)
    source, mode, reason = LAUNCH_FAILURES[kind]
    lambda_dirs.function(FUNCTION)
    broken = lambda_dirs.opt / "extensions" / "broken"
    broken.write_bytes(source)
    broken.chmod(mode)
    if where == "rie":
        rie = request.getfixturevalue("rie_factory")(lambda_dirs.opt, lambda_dirs.task, "app.handler", timeout_s=5)
        rie.invoke_json({})
        logs = rie.logs()
    else:
        box = request.getfixturevalue("sandbox_factory")(lambda_dirs, timeout_s=5, echo=False)
        result = box.invoke({})
        assert result.function_error == "Unhandled"
        assert result.json()["errorType"] == ErrorType.EXTENSION_LAUNCH_ERROR
        logs = "\n".join([*(line.text for line in box.logs), result.json()["errorMessage"]])
    # THEN init fails with Extension.LaunchError and execve's reason, not as a crash
    assert "Extension.LaunchError" in logs and "Extension.Crash" not in logs
    assert f"fork/exec /opt/extensions/broken: {reason}" in logs


@pytest.mark.parametrize("where", ["rie", "sandbox"])
def test_extension_reached_through_absolute_links_into_the_layer_starts(where: str, lambda_dirs: LambdaDirs,
                                                                         request: pytest.FixtureRequest) -> None:
    # GIVEN an extension that is a link to /opt/real/rec, run by an interpreter /opt/bin/py that is a
    # link to /opt/lang/py: absolute links that resolve only where the layer is at /opt
    lambda_dirs.function(FUNCTION)
    records = lambda_dirs.recording_extension("rec")
    opt = lambda_dirs.opt
    for folder in ("real", "bin", "lang"):
        (opt / folder).mkdir()
    interpreter = opt / "lang" / "py"
    interpreter.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    interpreter.chmod(0o755)
    (opt / "bin" / "py").symlink_to("/opt/lang/py")
    source = (opt / "extensions" / "rec").read_text().split("\n", 1)[1]
    (opt / "extensions" / "rec").unlink()
    (opt / "real" / "rec").write_text("#!/opt/bin/py\n" + source)
    (opt / "real" / "rec").chmod(0o755)
    (opt / "extensions" / "rec").symlink_to("/opt/real/rec")
    if where == "rie":
        rie = request.getfixturevalue("rie_factory")(opt, lambda_dirs.task, "app.handler", timeout_s=5)
        status, _, _ = rie.invoke_json({})
    else:
        box = request.getfixturevalue("sandbox_factory")(lambda_dirs, timeout_s=5, echo=False)
        status = box.invoke({}).status
    # THEN it is launched, registers and gets the INVOKE, as in Lambda
    assert status == 200
    wait_until(lambda: records.events("INVOKE"), 5, message="the linked extension got no INVOKE")


BOOTSTRAP_FAILURES = {  # the bootstrap's text and mode, and how execve fails on it
    "crlf": (b"#!/bin/sh\r\necho never\r\n", 0o755, "no such file or directory"),
    "not-executable": (b"#!/bin/sh\necho never\n", 0o644, "permission denied"),
    "other-architecture": (_other_architecture_binary(), 0o755, "exec format error"),
}


@pytest.mark.parametrize("where", ["rie", "sandbox", "sandbox-without-namespace"])
@pytest.mark.parametrize("kind", sorted(BOOTSTRAP_FAILURES))
def test_custom_runtime_that_cannot_start_is_an_invalid_entrypoint(where: str, kind: str, lambda_dirs: LambdaDirs,
                                                                   request: pytest.FixtureRequest) -> None:
    # GIVEN a custom runtime whose bootstrap cannot be executed (saved with CRLF line endings,
    # zipped without its executable bit, built for the other architecture)
    text, mode, reason = BOOTSTRAP_FAILURES[kind]
    bootstrap = lambda_dirs.task / "bootstrap"
    bootstrap.write_bytes(text)
    bootstrap.chmod(mode)
    if where == "rie":  # RIE execs the command it is given: the bootstrap itself
        rie = request.getfixturevalue("rie_factory")(lambda_dirs.opt, lambda_dirs.task, "app.handler", timeout_s=5,
                                                     python=str(bootstrap))
        rie.invoke_json({})
        logs = rie.logs()
        inside = str(bootstrap)
    else:
        namespace = where == "sandbox"
        box = request.getfixturevalue("sandbox_factory")(lambda_dirs, timeout_s=5, echo=False, runtime="provided",
                                                         namespace=namespace)
        result = box.invoke({})
        assert result.status == 200 and result.function_error == "Unhandled", result
        assert result.json()["errorType"] == ErrorType.INVALID_ENTRYPOINT
        logs = "\n".join([*(line.text for line in box.logs), result.json()["errorMessage"]])
        inside = "/var/task/bootstrap" if namespace else str(bootstrap)
    # THEN init fails with Runtime.InvalidEntrypoint and execve's reason, not as an exit of the runtime
    assert "Runtime.InvalidEntrypoint" in logs and "Runtime.ExitError" not in logs
    assert f"fork/exec {inside}: {reason}" in logs


@pytest.mark.parametrize("where", ["rie", "sandbox"])
@pytest.mark.parametrize("events", [[["INVOKE"]], [5], "INVOKE"])
def test_register_with_events_that_are_not_names_is_an_invalid_request_format(
        where: str, events: Any, lambda_dirs: LambdaDirs, request: pytest.FixtureRequest) -> None:
    lambda_dirs.function(FUNCTION)
    if where == "rie":
        rie = request.getfixturevalue("rie_factory")(lambda_dirs.opt, lambda_dirs.task, "app.handler", timeout_s=5)
        rie.invoke_json({})
        address = f"127.0.0.1:{rie.runtime_port}"
    else:
        box = request.getfixturevalue("sandbox_factory")(lambda_dirs, timeout_s=5, echo=False)
        box.invoke({})
        address = box.runtime_api
    # WHEN a registration's events are not a list of names
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", "/2020-01-01/extension/register", json.dumps({"events": events}),
                 {"Lambda-Extension-Name": "odd"})
    reply = conn.getresponse()
    body = json.loads(reply.read())
    conn.close()
    # THEN it is refused as a malformed request, before anything else is looked at
    assert (reply.status, body["errorType"]) == (403, ErrorType.INVALID_REQUEST_FORMAT), body


@pytest.mark.parametrize("where", ["rie", "sandbox"])
def test_runtime_that_fails_init_reports_init_runtime_done_error(where: str, lambda_dirs: LambdaDirs,
                                                                  request: pytest.FixtureRequest) -> None:
    # GIVEN a function whose import raises, and a Telemetry subscriber
    lambda_dirs.function("raise RuntimeError('broken at import')\n")
    records = lambda_dirs.recording_extension("tel", telemetry={"maxItems": 1000, "maxBytes": 262144,
                                                                "timeoutMs": 25})
    if where == "rie":  # RIE has no Telemetry API: it logs the record it would send
        rie = request.getfixturevalue("rie_factory")(lambda_dirs.opt, lambda_dirs.task, "app.handler", timeout_s=5)
        rie.invoke_json({})
        wait_until(lambda: "INIT RTDONE(status: error)" in rie.logs(), 5, message=rie.logs)
        return
    box = request.getfixturevalue("sandbox_factory")(lambda_dirs, timeout_s=5, echo=False)
    result = box.invoke({})
    assert result.function_error == "Unhandled"
    # THEN platform.initRuntimeDone says the runtime's init failed, and why
    done = wait_until(lambda: [e["record"] for e in records.telemetry("platform.initRuntimeDone")], 5,
                      message="no platform.initRuntimeDone delivered")
    assert [(r["status"], r.get("errorType"), r["phase"]) for r in done] == [
        ("error", result.json()["errorType"], "init")]
