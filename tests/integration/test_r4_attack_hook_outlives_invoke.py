"""A @defer.every hook that runs past its invoke's deadline: the environment is frozen under it
(the extension stops waiting at the deadline less the margin) and it finishes after the next
thaw. Every message of both invokes and the hook's own arrives exactly once, and both invokes
succeed. Sandbox (it freezes between invokes), built layer, moto."""

from __future__ import annotations

import json
from pathlib import Path
from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_queue

FUNCTION = Path(__file__).parent / "functions" / "r4_hook_hangs"


def test_a_hook_that_outlives_its_invoke_finishes_after_the_thaw_and_loses_nothing(built_layer, aws_resources,
                                                                                      tmp_path):
    res = aws_resources()
    env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "fn.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal"),
           "HOOK_SLEEP_S": "2.5", "DEFER_DEADLINE_MARGIN_MS": "500"}
    box = Sandbox(built_layer, FUNCTION, "app.handler", timeout_s=2, env=env).start()
    try:
        first = box.invoke({"n": 1})
        assert first.status == 200 and first.function_error is None
        box.wait_for_report(first.request_id, timeout=10)
        second = box.invoke({"n": 2, "sleep": 1.2})  # thawed past the end of the hook's 2.5 s
        assert second.status == 200 and second.function_error is None, second.body
        box.wait_for_report(second.request_id, timeout=10)
        third = box.invoke({"n": 3})  # the hook finished by now (thawed through invoke 2)
        box.wait_for_report(third.request_id, timeout=10)
        seen = drain_queue(res.queue_url, 4, timeout=8)
        assert sorted(json.dumps(b, sort_keys=True) for b in seen) == sorted(json.dumps(b, sort_keys=True) for b in (
            {"from": "handler", "n": 1}, {"from": "handler", "n": 2}, {"from": "handler", "n": 3}, {"from": "hook"}))
        assert not [r for r in box.reports if r.status not in (None, "success")], box.reports
    finally:
        box.stop()
