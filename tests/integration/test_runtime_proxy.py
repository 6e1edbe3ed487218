"""With AWS_LAMBDA_EXEC_WRAPPER=/opt/defer-runner/exec-wrapper the extension learns that each response
was posted from its Runtime API proxy: exact, prompt, whatever the decorators, and under
RIE, where there is no Telemetry API."""

from __future__ import annotations

from pathlib import Path

from tests.support.moto_server import drain_queue

FUNCTION_DIR = Path(__file__).parent / "functions" / "decorated"


def start(rie_factory, built_layer, res, tmp_path, handler="app.handler", wrapper=True, timeout_s=8):
    env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "defer.sock"),
           "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    if wrapper:
        env["AWS_LAMBDA_EXEC_WRAPPER"] = "/opt/defer-runner/exec-wrapper"
    return rie_factory(built_layer, FUNCTION_DIR, handler, env=env, timeout_s=timeout_s)


def test_a_short_circuiting_outer_decorator_answers_at_once_under_rie(rie_factory, built_layer,
                                                                      aws_resources, tmp_path):
    res = aws_resources()
    rie = start(rie_factory, built_layer, res, tmp_path)
    status, body, _ = rie.invoke({"tag": "first"})  # cold: extension and runtime start
    assert status == 200 and drain_queue(res.queue_url, 1, timeout=3) == [{"tag": "first"}]
    status, body, elapsed = rie.invoke({"tag": "hit", "cached": True})
    assert status == 200 and b'"cached": true' in body
    assert elapsed < 1.0, f"held {elapsed:.2f}s: the extension waited for an end marker that never comes"
    held = []
    for n in range(10):  # hits and misses alternate; none waits for a signal that is late
        status, _, elapsed = rie.invoke({"tag": f"after-{n}", "cached": n % 2 == 1})
        assert status == 200
        held.append(round(elapsed, 3))
    assert max(held) < 0.5, held
    got = sorted(b["tag"] for b in drain_queue(res.queue_url, 5, timeout=3))
    assert got == [f"after-{n}" for n in range(0, 10, 2)]
    assert '"runtime_proxy":"127.0.0.1:' in rie.logs().replace(" ", "")


def test_without_the_wrapper_the_short_circuit_is_not_held_either(rie_factory, built_layer,
                                                                  aws_resources, tmp_path):
    """Without the wrapper (this used to hold the invoke to its deadline, 2.7 s of 3): the
    function's process reports the runtime's post itself (see test_r3_outer_decorator.py)."""
    res = aws_resources()
    rie = start(rie_factory, built_layer, res, tmp_path, wrapper=False, timeout_s=3)
    rie.invoke({"tag": "first"})
    _, _, elapsed = rie.invoke({"tag": "hit", "cached": True})
    assert elapsed < 1.5


def test_an_unwrapped_handler_is_drained_in_its_own_invoke_under_rie(rie_factory, built_layer,
                                                                     aws_resources, tmp_path):
    res = aws_resources()
    rie = start(rie_factory, built_layer, res, tmp_path, handler="app.unwrapped")
    status, _, _ = rie.invoke({"tag": "u1"})
    assert status == 200
    # Delivered before the invoke ended: RIE holds the response until the extension's next.
    assert drain_queue(res.queue_url, 1, timeout=0.5) == [{"tag": "u1"}]


def test_in_the_sandbox_the_proxy_ends_an_unwrapped_invoke_without_waiting_for_telemetry(
        built_layer, aws_resources, tmp_path):
    """Telemetry's runtimeDone comes at least 25 ms late; the proxy sees the response posted."""
    from lambda_sandbox import Sandbox

    res = aws_resources()
    env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "defer.sock"),
           "DEFER_JOURNAL_DIR": str(tmp_path / "journal"),
           "AWS_LAMBDA_EXEC_WRAPPER": "/opt/defer-runner/exec-wrapper"}
    box = Sandbox(built_layer, FUNCTION_DIR, "app.unwrapped", timeout_s=10, env=env, echo=False).start()
    try:
        box.invoke({"tag": "warm"})
        assert drain_queue(res.queue_url, 1, timeout=3) == [{"tag": "warm"}]  # same invoke
        box.wait_idle()
        posts = []
        for n in range(7):  # idle invokes: what is left is the wait for "the handler is done"
            result = box.invoke({"tag": f"u{n}", "idle": True})
            posts.append(box.wait_for_report(result.request_id).post_runtime_extensions_ms)
        # Telemetry buffers runtimeDone for 25 ms at least; the proxy knows at once.
        assert sorted(posts)[3] < 15, posts
        assert any('"runtime_proxy":"127.0.0.1:' in line.text.replace(" ", "") for line in box.logs)
    finally:
        box.stop()
