"""The points where the sandbox must behave like Lambda and unlike RIE: early response,
serialised invokes, freeze between invokes, reset on timeout or crash, bounded stop."""
from __future__ import annotations

import sys
import textwrap
import threading
import time

import pytest

from lambda_sandbox import ErrorType, Report
from lambda_sandbox.memory import memory_cgroups_available
from tests.support.processes import is_running, process_state
from tests.support.waiting import wait_until

QUICK = """
def handler(event, context):
    return {"ok": True, "request_id": context.aws_request_id}
"""

SLEEPY = """
import time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
"""

TICKER = """
import os, threading, time

PATH = os.environ["TICK_FILE"]

def _tick():
    while True:
        with open(PATH, "a") as handle:
            handle.write(f"{time.time()}\\n")
        time.sleep(0.01)

threading.Thread(target=_tick, daemon=True).start()

def handler(event, context):
    return {"ok": True}
"""


def test_response_returns_before_extension_finishes(lambda_dirs, sandbox_factory):
    # GIVEN an extension that works 1 s after every INVOKE
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("slow", invoke_sleep_s=1.0)
    box = sandbox_factory(lambda_dirs, echo=False, init="eager")
    # WHEN the function is invoked
    result = box.invoke({"hello": "world"})
    # THEN the caller has the response long before the extension is done
    assert result.status == 200, result.body
    assert result.json()["request_id"] == result.request_id
    assert result.elapsed_s < 0.5
    report = box.wait_for_report(result.request_id, timeout=5)
    assert 900 <= report.post_runtime_extensions_ms <= 1800, report
    assert report.duration_ms >= report.post_runtime_extensions_ms
    assert report.init_ms is not None and report.init_ms > 0
    assert report.billed_ms >= report.duration_ms
    assert report.max_memory_mb > 5
    assert [e["requestId"] for e in records.events("INVOKE")] == [result.request_id]
    assert Report.parse(report.line()) == report


def test_next_invoke_waits_until_extensions_called_next(lambda_dirs, sandbox_factory):
    lambda_dirs.function(QUICK)
    lambda_dirs.recording_extension("slow", invoke_sleep_s=0.8)
    box = sandbox_factory(lambda_dirs, echo=False, init="eager")
    first = box.invoke({})
    second = box.invoke({})
    assert first.elapsed_s < 0.5
    assert second.elapsed_s >= 0.6, "the second invoke ran while the extension still worked on the first"
    start_lines = [l.time for l in box.logs if l.text.startswith(f"START RequestId: {second.request_id}")]
    report_lines = [l.time for l in box.logs if l.text.startswith(f"REPORT RequestId: {first.request_id}")]
    assert report_lines[0] <= start_lines[0]
    assert box.wait_for_report(second.request_id).init_ms is None, "no re-init between two normal invokes"


def test_environment_is_frozen_between_invokes(lambda_dirs, sandbox_factory, tmp_path):
    # GIVEN a function whose background thread appends a line every 10 ms
    tick_file = tmp_path / "ticks"
    lambda_dirs.function(TICKER)
    lambda_dirs.recording_extension("ext", invoke_sleep_s=0.3)
    box = sandbox_factory(lambda_dirs, env={"TICK_FILE": str(tick_file)}, echo=False, init="eager")
    # WHEN an invoke completes (the extension kept the environment thawed for 0.3 s)
    before = tick_file.read_text().count("\n")
    result = box.invoke({})
    assert result.elapsed_s < 0.25
    box.wait_for_report(result.request_id)
    assert box.wait_idle(5) and box.frozen
    # THEN the thread ran while the extension worked after the response...
    during = tick_file.read_text().count("\n")
    assert during - before >= 10
    # ...every process is stopped, and over a bounded window the file does not grow
    assert box.pids() and all(process_state(pid) == "T" for pid in box.pids())
    window_end = time.monotonic() + 0.3
    while time.monotonic() < window_end:
        assert tick_file.read_text().count("\n") == during
        time.sleep(0.05)
    # AND it runs again once thawed by the next invoke
    box.invoke({})
    wait_until(lambda: tick_file.read_text().count("\n") > during, 5, message="no tick after thaw")


def test_timeout_resets_with_shutdown_timeout_and_reinits(lambda_dirs, sandbox_factory):
    lambda_dirs.function(SLEEPY)
    records = lambda_dirs.recording_extension("ext")
    box = sandbox_factory(lambda_dirs, timeout_s=1, echo=False, init="eager")
    old_pids = box.pids()
    assert old_pids
    result = box.invoke({"sleep": 5})
    body = result.json()
    assert result.status == 200 and result.function_error == "Unhandled"
    assert body["errorType"] == ErrorType.TIMED_OUT
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
    assert 0.9 <= result.elapsed_s < 2.0
    report = box.wait_for_report(result.request_id)
    assert report.status == "timeout"
    wait_until(lambda: records.events("SHUTDOWN"), 5, message="no SHUTDOWN after the timeout")
    assert records.events("SHUTDOWN")[0]["shutdownReason"] == "timeout"
    wait_until(lambda: not [p for p in old_pids if is_running(p)], 5,
               message="processes of the timed-out environment are still running")
    # the next invoke re-initialises: a second registration, and Init Duration on its REPORT
    again = box.invoke({"sleep": 0})
    assert again.status == 200 and again.json() == {"ok": True}
    assert len(records.of("registered")) == 2
    assert box.wait_for_report(again.request_id).init_ms is not None


def test_timeout_while_extension_works_after_response(lambda_dirs, sandbox_factory):
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("ext", invoke_sleep_s=1.5)
    box = sandbox_factory(lambda_dirs, timeout_s=1, echo=False, init="eager")
    result = box.invoke({})
    assert result.status == 200 and result.json()["ok"] is True and result.elapsed_s < 0.5
    assert box.wait_for_report(result.request_id, timeout=5).status == "timeout"
    # the busy extension gets the SHUTDOWN when it calls next, within the 2 s budget
    wait_until(lambda: records.events("SHUTDOWN"), 5, message="no SHUTDOWN after the timeout")
    assert records.events("SHUTDOWN")[0]["shutdownReason"] == "timeout"


def test_extension_crash_resets_and_reinits(lambda_dirs, sandbox_factory):
    marker = lambda_dirs.root / "crash-once"  # the shared dir: the extension sees it
    marker.touch()
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("ext", crash_marker=str(marker), invoke_sleep_s=0.2)
    box = sandbox_factory(lambda_dirs, echo=False)
    result = box.invoke({})
    assert result.status == 200  # the runtime answered before the crash
    report = box.wait_for_report(result.request_id)
    assert report.status == "failure" and report.error_type == ErrorType.EXTENSION_CRASH
    box.wait_for_log("Extension.Crash", timeout=5)
    again = box.invoke({})
    assert again.status == 200 and again.json()["ok"] is True
    assert len(records.of("registered")) == 2
    assert box.wait_for_report(again.request_id).status == "success"


def test_extension_exit_after_exit_error_is_an_exit_error(lambda_dirs, sandbox_factory):
    lambda_dirs.function(QUICK)
    lambda_dirs.extension("quits", f"#!{sys.executable}\n" + textwrap.dedent(f"""
        import http.client, json, os
        api = os.environ["AWS_LAMBDA_RUNTIME_API"]
        def call(method, path, body=b"", headers=None):
            conn = http.client.HTTPConnection(api)
            conn.request(method, path, body, headers or {{}})
            reply = conn.getresponse()
            return reply.getheader("Lambda-Extension-Identifier"), reply.read()
        ext_id, _ = call("POST", "/2020-01-01/extension/register", b'{{"events": ["INVOKE"]}}',
                         {{"Lambda-Extension-Name": "quits"}})
        call("GET", "/2020-01-01/extension/event/next", headers={{"Lambda-Extension-Identifier": ext_id}})
        call("POST", "/2020-01-01/extension/exit/error", b"{{}}",
             {{"Lambda-Extension-Identifier": ext_id, "Lambda-Extension-Function-Error-Type": "Extension.Gave.Up"}})
        os._exit(1)
    """))
    box = sandbox_factory(lambda_dirs, echo=False)
    result = box.invoke({})
    report = box.wait_for_report(result.request_id)
    assert report.status == "failure" and report.error_type == ErrorType.EXTENSION_EXIT_ERROR
    box.wait_for_log("Extension.ExitError (quits)", timeout=5)


def test_runtime_crash_resets(lambda_dirs, sandbox_factory):
    lambda_dirs.function("""
        import os

        def handler(event, context):
            if event.get("die"):
                os._exit(7)
            return {"ok": True}
    """)
    box = sandbox_factory(lambda_dirs, echo=False)
    result = box.invoke({"die": True})
    assert result.json()["errorType"] == ErrorType.RUNTIME_EXIT
    assert box.wait_for_report(result.request_id).status == "failure"
    assert box.invoke({}).json() == {"ok": True}


def test_stop_sends_spindown_then_kills_within_budget(lambda_dirs, sandbox_factory):
    # GIVEN an extension that lingers 10 s after SHUTDOWN
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("lingers", shutdown_sleep_s=10)
    box = sandbox_factory(lambda_dirs, echo=False)
    box.invoke({})
    box.wait_idle(5)
    pids = box.pids()
    assert len(pids) >= 2
    # WHEN the sandbox stops
    started = time.time()
    box.stop()
    took = time.time() - started
    # THEN the extension got SHUTDOWN (spindown, deadline about now + 2 s) and was killed at the deadline
    shutdown = records.events("SHUTDOWN")
    assert shutdown and shutdown[0]["shutdownReason"] == "spindown"
    assert 1500 <= shutdown[0]["deadlineMs"] - started * 1000 <= 2600
    assert 1.8 <= took < 4.0
    assert not records.of("shutdown_done")
    assert not [pid for pid in pids if is_running(pid)]


def test_function_error_is_returned_with_function_error_header(lambda_dirs, sandbox_factory):
    lambda_dirs.function("""
        def handler(event, context):
            raise ValueError("boom")
    """)
    box = sandbox_factory(lambda_dirs, echo=False)
    result = box.invoke({})
    assert result.status == 200 and result.function_error == "Unhandled"
    assert result.json()["errorType"] == "ValueError"
    assert box.wait_for_report(result.request_id).status == "error"
    assert box.invoke({}).json()["errorMessage"] == "boom", "an error does not reset the environment"


def test_init_error_is_returned_and_retried(lambda_dirs, sandbox_factory):
    lambda_dirs.function("raise ImportError('no such thing')\n")
    box = sandbox_factory(lambda_dirs, echo=False)
    result = box.invoke({})
    assert result.status == 200 and result.function_error == "Unhandled"
    assert result.json()["errorType"].startswith("Runtime.")
    lambda_dirs.function(QUICK)
    assert box.invoke({}).json()["ok"] is True


def test_concurrent_invokes_are_served_one_at_a_time_in_order(lambda_dirs, sandbox_factory):
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("ext", invoke_sleep_s=0.2)
    box = sandbox_factory(lambda_dirs, echo=False)
    results = []
    threads = [threading.Thread(target=lambda: results.append(box.invoke({}))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(r.status for r in results) == [200, 200, 200]
    for result in results:
        box.wait_for_report(result.request_id)
    # every START comes after the previous invoke's REPORT (no overlap)
    marks = [(l.time, l.text.split()[0]) for l in box.logs if l.text.startswith(("START ", "REPORT "))]
    assert [kind for _, kind in marks] == ["START", "REPORT"] * 3
    assert len(records.events("INVOKE")) == 3


def test_runtime_starts_after_registration_not_after_next(lambda_dirs, sandbox_factory):
    # GIVEN an extension that registers, then works 0.5 s before its first next
    imported = lambda_dirs.root / "imported"
    lambda_dirs.function(f"""
        import time
        open({str(imported)!r}, "w").write(str(time.time()))

        def handler(event, context):
            return {{"ok": True}}
    """)
    records = lambda_dirs.recording_extension("slowinit", init_sleep_s=0.5)
    # WHEN the sandbox initialises (on the first invoke)
    box = sandbox_factory(lambda_dirs, echo=False)
    assert box.invoke({}).json() == {"ok": True}
    # THEN the function was imported before the extension called next (as in Lambda)
    registered = records.of("registered")[0]["t"]
    first_next = records.of("first_next")[0]["t"]
    assert registered < float(imported.read_text()) < first_next


def test_init_runs_inside_the_first_invoke(lambda_dirs, sandbox_factory):
    # GIVEN an extension whose init takes 0.4 s
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("slowinit", init_sleep_s=0.4)
    box = sandbox_factory(lambda_dirs, echo=False)
    # THEN nothing runs before the first invoke (on-demand Lambda)
    assert box.pids() == [] and not records.of("started")
    # WHEN it is invoked, the caller waits for init, and the REPORT carries Init Duration
    first = box.invoke({})
    assert first.status == 200 and first.elapsed_s >= 0.4
    cold = box.wait_for_report(first.request_id)
    assert cold.init_ms is not None and cold.init_ms >= 400
    assert cold.duration_ms < cold.init_ms, "Duration does not include init"
    # AND the next invoke is warm
    second = box.invoke({})
    assert second.elapsed_s < 0.3 and box.wait_for_report(second.request_id).init_ms is None
    assert len(records.of("registered")) == 1


def test_eager_init_runs_at_start(lambda_dirs, sandbox_factory):
    lambda_dirs.function(QUICK)
    records = lambda_dirs.recording_extension("slowinit", init_sleep_s=0.4)
    box = sandbox_factory(lambda_dirs, echo=False, init="eager")
    assert records.of("first_next") and box.frozen
    first = box.invoke({})
    assert first.elapsed_s < 0.3
    assert box.wait_for_report(first.request_id).init_ms >= 400, "the first REPORT still carries Init Duration"


HUNGRY = """
def handler(event, context):
    hoard = bytearray(event["mb"] * 1024 * 1024)
    hoard[::4096] = b"x" * len(hoard[::4096])  # touch every page
    return {"held_mb": len(hoard) // (1024 * 1024)}
"""


@pytest.mark.skipif(not memory_cgroups_available(), reason="no memory cgroup can be made here")
def test_memory_limit_is_enforced_for_the_environment(lambda_dirs, sandbox_factory):
    lambda_dirs.function(HUNGRY)
    records = lambda_dirs.recording_extension("ext")
    box = sandbox_factory(lambda_dirs, memory_mb=128, echo=False)
    # GIVEN an invoke within the limit: its REPORT shows the real peak (function and extension)
    fits = box.invoke({"mb": 40})
    assert fits.json() == {"held_mb": 40}
    assert 40 < box.wait_for_report(fits.request_id).max_memory_mb <= 128
    # WHEN the function allocates 300 MB in a 128 MB environment
    hungry = box.invoke({"mb": 300})
    # THEN the invoke fails as Lambda fails it, and the environment is reset
    assert hungry.function_error == "Unhandled" and hungry.json()["errorType"] == ErrorType.OUT_OF_MEMORY
    report = box.wait_for_report(hungry.request_id)
    assert report.status == "failure" and report.error_type == ErrorType.OUT_OF_MEMORY
    assert report.max_memory_mb <= 130
    wait_until(lambda: records.events("SHUTDOWN"), 5, message="no SHUTDOWN after the OOM")
    assert records.events("SHUTDOWN")[0]["shutdownReason"] == "failure"
    assert box.invoke({"mb": 1}).json() == {"held_mb": 1}
