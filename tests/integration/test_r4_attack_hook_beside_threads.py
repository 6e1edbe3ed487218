"""Threads of the handler that keep deferring while a @defer.every hook runs after the
response: every message of the handler, its thread and the hook arrives (none lost between
the hook's invoke and the loose items of the thread). Sandbox, built layer, moto."""

from __future__ import annotations

import json
from pathlib import Path

from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_queue

FUNCTION = Path(__file__).parent / "functions" / "r4_hook_threads"


def test_a_thread_deferring_beside_a_running_hook_loses_nothing(built_layer, aws_resources, tmp_path):
    res = aws_resources()
    env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "fn.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, FUNCTION, "app.handler", timeout_s=5, env=env).start()
    try:
        # invoke 1: the thread defers beside the hook (run_first); invoke 2 (no hook due) waits
        # for its own thread, so that nothing is left for an invoke that never comes
        for tag, join in ((1, False), (2, True)):
            result = box.invoke({"tag": tag, "join": join})
            assert result.status == 200 and result.function_error is None
            box.wait_for_report(result.request_id, timeout=10)
        expected = ([{"from": "handler", "tag": t} for t in (1, 2)]
                    + [{"from": "thread", "tag": t, "n": n} for t in (1, 2) for n in range(10)]
                    + [{"from": "hook", "n": n} for n in range(10)])
        got = drain_queue(res.queue_url, len(expected), timeout=10)
        key = lambda b: json.dumps(b, sort_keys=True)  # noqa: E731
        assert sorted(map(key, got)) == sorted(map(key, expected))
    finally:
        box.stop()
