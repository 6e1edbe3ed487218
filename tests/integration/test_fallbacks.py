"""Work is late but never lost when the extension is missing or the handler is not wrapped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

from handler_lib import ExtensionUnavailableError, defer
from handler_lib._dispatch import DISPATCHER
from tests.conftest import REPO_ROOT
from tests.support.moto_server import drain_queue


@pytest.fixture
def no_extension(tmp_path, monkeypatch):
    monkeypatch.setenv("DEFER_SOCKET", str(tmp_path / "nobody-listens.sock"))
    DISPATCHER.reset()
    yield
    DISPATCHER.reset()


def test_without_an_extension_work_runs_inline_after_the_handler_with_one_warning(no_extension, aws_resources):
    res = aws_resources()
    sqs = boto3.client("sqs")
    seen_during_handler = []

    @defer
    def handler(event, context):
        defer.sqs(res.queue_url, {"n": 1})
        defer.sns(res.topic_arn, {"n": 2})
        attrs = sqs.get_queue_attributes(QueueUrl=res.queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        seen_during_handler.append(int(attrs["Attributes"]["ApproximateNumberOfMessages"]))
        return "ok"

    with pytest.warns(RuntimeWarning, match="runs inline after the handler returns") as warned:
        first_call = sys._getframe().f_lineno + 1
        assert handler({}, SimpleNamespace(aws_request_id="r1")) == "ok"
        assert handler({}, SimpleNamespace(aws_request_id="r2")) == "ok"
    # One warning per process, not per item, at the caller's line. Only ours are counted: a
    # collected event loop of an earlier test may warn inside this block too.
    ours = [w for w in warned if str(w.message).startswith("lambda-defer:")]
    assert [(Path(w.filename).name, w.lineno) for w in ours] == [(Path(__file__).name, first_call)]
    assert seen_during_handler == [0, 1]  # each invoke's item was sent after its handler ran
    assert drain_queue(res.queue_url, 2, timeout=3) == [{"n": 1}, {"n": 1}]
    assert drain_queue(res.topic_queue_url, 2, timeout=3) == [{"n": 2}, {"n": 2}]


def test_extension_mode_refuses_at_the_call_site_when_no_extension_listens(no_extension, monkeypatch, aws_resources):
    monkeypatch.setenv("DEFER_MODE", "extension")
    with pytest.raises(ExtensionUnavailableError, match="DEFER_MODE=extension"):
        defer.sqs("https://sqs.us-east-1.amazonaws.com/1/q", "m")


def test_unwrapped_handler_items_arrive_by_the_next_invoke_or_shutdown_without_telemetry(
        rie_factory, built_layer, aws_resources, tmp_path):
    # RIE has no Telemetry API: with neither an end marker nor runtimeDone the extension
    # cannot know when such a handler is done, so its items ride on the next drain.
    res = aws_resources()
    rie = rie_factory(built_layer, Path(__file__).parent / "functions" / "unwrapped", "app.handler",
                      env={**res.env(), "DEFER_SOCKET": str(tmp_path / "d.sock"),
                           "DEFER_JOURNAL_DIR": str(tmp_path / "journal")})
    assert rie.invoke({"tag": "first"})[0] == 200
    assert rie.invoke({"tag": "second"})[0] == 200
    landed = drain_queue(res.queue_url, 1, timeout=3)
    assert {"tag": "first"} in landed  # by the end of the next invoke at the latest
    rie.stop()  # SHUTDOWN drains the rest
    landed += drain_queue(res.queue_url, 2 - len(landed), timeout=3) if len(landed) < 2 else []
    assert sorted(m["tag"] for m in landed) == ["first", "second"]


def test_without_an_extension_after_work_runs_before_the_handler_returns(no_extension, aws_resources):
    res = aws_resources()
    order = []

    @defer
    def handler(event, context):
        def work():
            order.append("after")
            defer.sqs(res.queue_url, {"from": "after"})
        defer.after(work)
        order.append("handler")
        return "ok"

    with pytest.warns(RuntimeWarning, match="runs inline"):
        assert handler({}, SimpleNamespace(aws_request_id="r1")) == "ok"
        order.append("returned")
    assert order == ["handler", "after", "returned"]
    assert drain_queue(res.queue_url, 1, timeout=2) == [{"from": "after"}]  # delivered before return


def test_after_outside_an_invoke_is_refused_at_the_call(no_extension):
    with pytest.raises(RuntimeError, match="needs an invoke"):
        defer.after(print, "never")
    with pytest.raises(TypeError, match="needs a callable"):
        defer.after("not callable")


INLINE_HANDLER = """
import json, logging, sys, time
from types import SimpleNamespace
import boto3  # a warm function: what is timed is delivery, not the first import
from handler_lib import defer

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
timeout_ms = int(sys.argv[2])
deadline = time.monotonic() + timeout_ms / 1000
context = SimpleNamespace(aws_request_id="r-inline",
                          get_remaining_time_in_millis=lambda: int((deadline - time.monotonic()) * 1000))

@defer
def handler(event, context):
    defer.sqs(sys.argv[1], {"n": 1})

started = time.monotonic()
handler({}, context if timeout_ms else SimpleNamespace(aws_request_id="r-inline"))
print(json.dumps({"elapsed_s": time.monotonic() - started}))
"""


@pytest.mark.parametrize("invoke_timeout_ms, budget_ms, bound_s", [
    (2500, 60_000, 2.5),  # the invoke's remaining time less the 300 ms margin bounds it: 2.2 s
    (0, 1000, 2.0),       # no context clock: DEFER_INLINE_BUDGET_MS does (old code: 30 s)
])
def test_inline_delivery_to_an_unreachable_endpoint_ends_within_the_invoke_and_says_why(
        fault_proxy, aws_resources, tmp_path, invoke_timeout_ms, budget_ms, bound_s):
    res = aws_resources()
    fault_proxy.refuse_connections()
    env = {**os.environ, "DEFER_MODE": "inline", "DEFER_SOCKET": str(tmp_path / "none.sock"),
           "AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_INLINE_BUDGET_MS": str(budget_ms)}
    env.pop("DEFER_DLQ_URL", None)
    out = subprocess.run([sys.executable, "-c", INLINE_HANDLER, res.queue_url, str(invoke_timeout_ms)],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["elapsed_s"] < bound_s
    gave_up = [line for line in out.stderr.splitlines() if "gave up on sqs" in line]
    assert len(gave_up) == 1, out.stderr  # one line per item (there were two)
    assert res.queue_url in gave_up[0] and "last error: Defer.TransportError: EndpointConnectionError" in gave_up[0]


def test_inline_a_task_that_defers_more_does_not_wait_for_itself(no_extension, aws_resources, tmp_path,
                                                                 monkeypatch):
    """A task run inline defers a message (as a change record at its commit does): the running
    drain takes it; a drain of its own would wait for the task that waits for it."""
    import importlib
    import sys
    import time

    res = aws_resources()
    code = tmp_path / "code"
    code.mkdir()
    module = f"chained_{abs(hash(str(tmp_path))) % 10**8}"
    (code / f"{module}.py").write_text(
        "import os\nfrom handler_lib import defer\n"
        "@defer.task(timeout=5.0)\ndef chained(n):\n"
        "    defer.sqs(os.environ['CHAIN_QUEUE'], {'from': 'task', 'n': n})\n")
    monkeypatch.setenv("CHAIN_QUEUE", res.queue_url)
    monkeypatch.syspath_prepend(str(code))
    task = importlib.import_module(module).chained

    @defer
    def handler(event, context):
        defer.sqs(res.queue_url, {"from": "handler"})
        task.defer(1)
        return "ok"

    started = time.monotonic()
    try:
        with pytest.warns(RuntimeWarning):
            assert handler({}, SimpleNamespace(aws_request_id="chain")) == "ok"
        elapsed = time.monotonic() - started
        got = sorted(b["from"] for b in drain_queue(res.queue_url, 2, timeout=3))
        assert got == ["handler", "task"]
        assert elapsed < 4, f"{elapsed:.1f}s: the nested drain waited for the task's timeout"
    finally:
        sys.modules.pop(module, None)


LETTERS_HANDLER = """
import sys
from types import SimpleNamespace
from handler_lib import defer

@defer
def handler(event, context):
    for n in range(2):
        defer.sns(sys.argv[1], {"n": n})

handler({}, SimpleNamespace(aws_request_id="r-letters"))
"""


def test_inline_letters_of_what_the_budget_left_go_out_before_the_handler_returns(
        fault_proxy, aws_resources, tmp_path):
    # GIVEN inline delivery with SNS throttled past a 300 ms budget, and a reachable DLQ (SQS)
    res = aws_resources()
    fault_proxy.throttle(service="sns")
    env = {**os.environ, **res.env(), "DEFER_MODE": "inline", "DEFER_SOCKET": str(tmp_path / "none.sock"),
           "AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_INLINE_BUDGET_MS": "300"}
    out = subprocess.run([sys.executable, "-c", LETTERS_HANDLER, res.topic_arn], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # THEN by the time the process ended (the handler returned), both letters were in the DLQ
    letters = drain_queue(res.dlq_url, 2, timeout=3)
    assert sorted(letter["kind"] for letter in letters) == ["sns", "sns"]
    assert {letter["error"]["code"] for letter in letters} == {"Defer.InlineBudgetExceeded"}


INVOKES_HANDLER = """
import json, sys
from types import SimpleNamespace
from handler_lib import defer

@defer
def handler(event, context):
    return [defer.sns(sys.argv[1], {"n": n, "pad": "x" * event["pad"]}) for n in range(event["n"])]

for line in sys.stdin:  # one invoke per line, as a warm environment serves them
    event = json.loads(line)
    ids = handler(event, SimpleNamespace(aws_request_id=event["rid"], get_remaining_time_in_millis=lambda: 3000))
    print(json.dumps(ids), flush=True)
"""


def _invokes_process(res, fault_proxy, tmp_path, **env_extra):
    env = {**os.environ, **res.env(), "DEFER_MODE": "inline", "DEFER_SOCKET": str(tmp_path / "none.sock"),
           "AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_INLINE_BUDGET_MS": "300",
           "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9", **env_extra}  # on Lambda: throttling is waited for
    return subprocess.Popen([sys.executable, "-c", INVOKES_HANDLER, res.topic_arn], cwd=REPO_ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _invoke(proc, rid, n=0, pad=0):
    """The ids the invoke's calls returned, once it ended."""
    proc.stdin.write(json.dumps({"rid": rid, "n": n, "pad": pad}) + "\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return json.loads(line)


def test_inline_letters_no_invoke_had_time_for_wait_for_a_later_one_not_given_up(
        fault_proxy, aws_resources, tmp_path):
    """A letter is never given up for want of time while its process lives: two invokes in a
    row run out of time for it (SNS and the DLQ throttled), a later one sends it. Before, the
    second invoke's end gave it up (an ERROR line) and it reached neither SNS nor the DLQ."""
    res = aws_resources()
    fault_proxy.throttle(service="sns")
    fault_proxy.throttle(service="sqs")  # the DLQ
    proc = _invokes_process(res, fault_proxy, tmp_path)
    try:
        _invoke(proc, "r-1", n=2)  # given up at the budget; letters queued, throttled for 1 s more
        _invoke(proc, "r-2")  # its end tries them again, briefly: still throttled
        assert drain_queue(res.dlq_url, 1, timeout=0.5) == []
        fault_proxy.clear()
        letters: list = []
        for n in range(3, 40):  # the letters back off up to seconds after so many throttles
            _invoke(proc, f"r-{n}")
            letters += drain_queue(res.dlq_url, 2 - len(letters), timeout=0.3)
            if len(letters) >= 2:
                break
    finally:
        proc.stdin.close()
        stderr = proc.stderr.read()
        proc.wait(timeout=30)
    assert [letter["kind"] for letter in letters] == ["sns", "sns"], stderr
    assert len({letter["id"] for letter in letters}) == 2
    assert {letter["error"]["code"] for letter in letters} == {"Defer.InlineBudgetExceeded"}
    assert "its dead letter was not delivered" not in stderr


def test_inline_letters_held_past_the_memory_bound_are_given_up_oldest_first_each_said(
        fault_proxy, aws_resources, tmp_path):
    """The letters waiting for a later invoke live in the function's memory: past
    a quarter of its memory (1 MB of a 4 MB function here) the oldest are given up, each with
    its ERROR line."""
    res = aws_resources()
    fault_proxy.throttle(service="sns")
    fault_proxy.throttle(service="sqs")
    proc = _invokes_process(res, fault_proxy, tmp_path, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="4")
    try:
        first = _invoke(proc, "r-1", n=3, pad=200_000)  # ~0.6 MB of letters: held
        second = _invoke(proc, "r-2", n=3, pad=200_000)  # ~1.2 MB: the oldest go
        fault_proxy.clear()
        letters: list = []
        for n in range(3, 40):
            _invoke(proc, f"r-{n}")
            letters += drain_queue(res.dlq_url, 6, timeout=0.3)
            if len({letter["id"] for letter in letters}) >= 5:
                break
    finally:
        proc.stdin.close()
        stderr = proc.stderr.read()
        proc.wait(timeout=30)
    given_up = [line for line in stderr.splitlines() if "its dead letter was not delivered" in line]
    assert given_up and all("a quarter of its memory" in line for line in given_up), stderr
    dropped = [line.split("gave up on ")[1].split(":")[0] for line in given_up]
    assert dropped == first[:len(dropped)], stderr  # the oldest, in order
    assert len(dropped) in (1, 2), stderr  # ~1.2 MB of letters (with their envelopes) against 1 MiB
    waiting = [line for line in stderr.splitlines() if "waits in this process for a later invoke" in line]
    assert len(waiting) == 6, stderr  # each held letter said so once
    assert {letter["id"] for letter in letters} == set(first[len(dropped):] + second), stderr  # the rest went
