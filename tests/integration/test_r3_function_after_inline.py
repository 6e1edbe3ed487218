"""An invoke with ``defer.after`` work whose items go inline (the extension is over its memory
bound) sends its end marker only after it delivered them: the extension keeps the environment
thawed until then, so nothing is frozen mid-delivery.

Real parts: the built layer (the real extension) in the sandbox, which freezes the environment
(SIGSTOP) as soon as the runtime and the extension both called ``next``; every AWS call goes
through the fault proxy, which makes SendMessageBatch slow, so the function's own delivery
takes longer than the extension's drain.
"""
from __future__ import annotations

from pathlib import Path

from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_queue

FUNCTION_DIR = Path(__file__).parent / "functions" / "faults"


def test_the_end_marker_comes_after_the_functions_own_delivery(built_layer, aws_resources, fault_proxy, tmp_path):
    # GIVEN a 1 MiB bound: of 60 items of 100 KB, the first ~13 go to the extension and the rest
    # (and the one the post-response work defers) are delivered by the function itself
    res = aws_resources()
    fault_proxy.set_latency(0.4, "SendMessageBatch")
    env = {**res.env(), "AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_MAX_QUEUED_MB": "1",
           "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, FUNCTION_DIR, "app.handler", timeout_s=30, env=env, echo=False).start()
    try:
        # WHEN an invoke with post-response work defers them
        result = box.invoke({"tag": "bound", "big": 60, "after": 0.01})
        assert result.status == 200, result.body
        box.wait_for_report(result.request_id, timeout=60)
        assert box.wait_idle(timeout=30)  # the environment is frozen now: nothing more is sent
        assert any("over its memory bound" in line.text for line in box.logs), "no item went inline"
        # THEN every item was delivered before the freeze, the function's own ones too
        got = [b["n"] for b in drain_queue(res.queue_url, 61, timeout=5) if b.get("tag") == "bound"]
        assert sorted(got, key=str) == sorted([*range(60), "after"], key=str), \
            f"{61 - len(got)} items were still undelivered when the environment froze"
    finally:
        box.stop()
