"""@defer.every in the local Lambda sandbox with the built layer: hooks run after responses,
never inside one, at most once per interval, and a failing hook costs its run only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lambda_sandbox import Sandbox
from tests.support.waiting import wait_until

FUNCTION = Path(__file__).parent / "functions" / "periodic"


@pytest.fixture
def box(built_layer: Path, tmp_path: Path):
    def start(**env: str) -> Sandbox:
        full = {"DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal"), **env}
        started.append(Sandbox(built_layer, FUNCTION, "app.handler", timeout_s=10, env=full, echo=False).start())
        return started[-1]

    started: list = []
    yield start
    for sandbox in started:
        sandbox.stop()


def _lines(sandbox: Sandbox, text: str) -> list:
    return [line.text for line in sandbox.logs if text in line.text]


def test_a_hook_runs_after_responses_at_most_once_per_interval(box):
    sandbox = box(HOOK_INTERVAL_S="1")
    sandbox.wait_for_report(sandbox.invoke({}).request_id)  # init: the module (and its hooks) load
    started = time.monotonic()
    responses = []
    while time.monotonic() - started < 1.6:  # quick invokes over 1.6 s of a 1 s interval
        result = sandbox.invoke({})
        assert result.status == 200 and result.function_error is None
        responses.append(result.elapsed_s)
        sandbox.wait_for_report(result.request_id)
    assert len(responses) >= 5
    wait_until(lambda: _lines(sandbox, "started"), 5, message="the hook never ran")
    runs = _lines(sandbox, "started")
    assert 1 <= len(runs) <= 2, runs  # not at init, not before its interval, at most once per interval
    # the caller never waited for the 0.5 s refresh: every response came back long before it
    assert max(responses) < 0.4, responses
    wait_until(lambda: len(_lines(sandbox, "done")) == len(runs), 5, message="a refresh never finished")
    # after another interval the next response starts it again
    before = len(runs)
    time.sleep(1.05)
    sandbox.wait_for_report(sandbox.invoke({}).request_id)
    wait_until(lambda: len(_lines(sandbox, "started")) == before + 1, 5, message="the hook did not run again")


def test_a_failing_hook_is_logged_once_per_run_and_the_invoke_succeeds(box):
    sandbox = box(HOOK_INTERVAL_S="1")
    sandbox.wait_for_report(sandbox.invoke({}).request_id)  # init: the module (and its hooks) load
    time.sleep(1.05)
    for _ in range(3):
        result = sandbox.invoke({})
        assert result.status == 200 and result.function_error is None
        sandbox.wait_for_report(result.request_id)
    wait_until(lambda: _lines(sandbox, "flag service down"), 5, message="the failing hook was not logged")
    failures = _lines(sandbox, "periodic hook app:flaky_flags raised")
    assert len(failures) == 1, failures  # ran once (one interval passed), logged once, traceback and all


def test_run_first_runs_after_the_first_response_not_before_it(box):
    sandbox = box(HOOK_INTERVAL_S="60", HOOK_RUN_FIRST="1")
    result = sandbox.invoke({})
    assert result.json() == {"refreshes": 0}  # the first response did not wait for the hook
    wait_until(lambda: _lines(sandbox, "refresh 1 done"), 5, message="run_first did not run")
    sandbox.wait_for_report(result.request_id)
    assert sandbox.invoke({}).json() == {"refreshes": 1}
    assert len(_lines(sandbox, "started")) == 1  # and not again within the 60 s interval


def _spans(sandbox: Sandbox, kind: str) -> dict:
    """pid -> [(start, end)] of each request or hook run a worker printed."""
    spans: dict = {}
    for line in _lines(sandbox, f"{kind} "):
        word, pid, start, end = line.split()[-4:]
        if word == kind:
            spans.setdefault(int(pid), []).append((float(start), float(end)))
    return spans


def test_on_managed_instances_a_hook_never_overlaps_a_request_of_its_worker(built_layer: Path, tmp_path: Path):
    # GIVEN two workers of a Managed Instances environment, each with a 0.5 s hook every 1 s
    sandbox = Sandbox(built_layer, Path(__file__).parent / "functions" / "periodic_workers", "app.handler",
                      timeout_s=10, echo=False, mode="managed-instances", max_concurrency=2,
                      env={"DEFER_SOCKET": str(tmp_path / "defer.sock"),
                           "DEFER_JOURNAL_DIR": str(tmp_path / "journal"),
                           "AWS_LAMBDA_EXEC_WRAPPER": "/opt/defer-runner/exec-wrapper"}).start()
    try:
        # WHEN requests keep both workers busy for 2.6 s
        stop_at = time.monotonic() + 2.6

        def keep_calling() -> int:
            served = 0
            while time.monotonic() < stop_at:
                result = sandbox.invoke({"work_s": 0.05})
                assert result.status == 200 and result.function_error is None, result.body
                served += 1
            return served

        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(4) as pool:
            served = sum(pool.map(lambda _: keep_calling(), range(4)))
        wait_until(lambda: sum(map(len, _spans(sandbox, "request").values())) == served, 10,
                   message="a request's line never came")
        wait_until(lambda: _spans(sandbox, "hook"), 5, message="no hook ran")
        requests, hooks = _spans(sandbox, "request"), _spans(sandbox, "hook")
        # THEN hooks ran, in the workers that served requests, at most once per interval each
        assert set(hooks) <= set(requests)
        for pid, runs in hooks.items():
            assert len(runs) <= 3, runs  # 2.6 s of 1 s intervals (the first due after one)
            starts = [start for start, _ in runs]
            assert all(b - a >= 0.99 for a, b in zip(starts, starts[1:])), starts
        # AND no hook ran while its worker served a request (the worker takes none meanwhile)
        overlaps = [(pid, hook, request) for pid, runs in hooks.items() for hook in runs
                    for request in requests[pid] if request[0] < hook[1] and request[1] > hook[0]]
        assert overlaps == []
    finally:
        sandbox.stop()


def test_under_rie_a_hook_runs_after_responses_and_a_failing_one_costs_its_run_only(rie_factory, built_layer: Path,
                                                                                   tmp_path: Path):
    # GIVEN AWS's Runtime Interface Emulator with the built layer, a 0.5 s hook and a failing one, every 1 s
    rie = rie_factory(built_layer, FUNCTION, "app.handler", timeout_s=10,
                      env={"HOOK_INTERVAL_S": "1", "DEFER_SOCKET": str(tmp_path / "defer.sock"),
                           "DEFER_JOURNAL_DIR": str(tmp_path / "journal")})
    status, body, first = rie.invoke_json({})
    assert (status, body) == (200, {"refreshes": 0})
    rie.wait_for_log("REPORT RequestId", count=1)
    # WHEN quick invokes come for 1.6 s, each once the one before ended
    started, answers = time.monotonic(), []
    while time.monotonic() - started < 1.6:
        status, body, elapsed = rie.invoke_json({})
        assert status == 200, body
        answers.append(elapsed)
        rie.wait_for_log("REPORT RequestId", count=len(answers) + 1, timeout=5)
    # THEN the hook ran once or twice, and only as post-response work: RIE holds an answer until
    # the extension is done (docs/testing.md, "AWS.s emulator"), so the answer of each invoke that ran it waited
    # for its 0.5 s, and every other answer came back at once
    rie.wait_for_log("refresh 1 done", timeout=5)
    runs = rie.logs().count("started")
    assert 1 <= runs <= 2
    assert len([a for a in answers if a > 0.4]) == runs, answers
    assert all(a < 0.4 or 0.5 <= a < 1.0 for a in answers), answers
    # AND the failing hook was logged with its traceback once per run, and no invoke failed
    assert 1 <= rie.logs().count("periodic hook app:flaky_flags raised") <= 2
    assert "ConnectionError: flag service down" in rie.logs()
