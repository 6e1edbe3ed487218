"""Round-4 attack: the extension SIGKILLed while durable invokes are in flight (the replies
held by the recording Lambda endpoint), under RIE with the built layer: the journal replays
them, and each durable execution is still started once, under its item's name."""

from __future__ import annotations

import os
import signal
import threading

from tests.integration.test_faults_rie import extension_pid
from tests.integration.test_workflow_faults_rie import workflows  # noqa: F401
from tests.support.moto_server import drain_queue
from tests.support.waiting import wait_until


def test_r4_durable_invokes_killed_in_flight_are_replayed_and_start_once(workflows, tmp_path):  # noqa: F811
    start, res, _, api = workflows
    api.add_function("orders", durable=True)
    rie = start()
    rie.invoke({"tag": "warm"})  # the extension is launched on the first invoke
    api.hold(3.0)  # each Invoke reaches the endpoint; its reply is held
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", rie.invoke(
        {"tag": "kill", "function": "orders", "invoke": 3})))
    thread.start()
    wait_until(lambda: api.arrivals >= 3, 10, message="the drain never called Invoke")
    os.kill(extension_pid(str(tmp_path / "defer.sock")), signal.SIGKILL)  # before any outcome is journaled
    thread.join(15)
    wait_until(lambda: len(api.of("Invoke")) >= 3, 10, message="the held calls were never answered")
    api.hold(0)
    status, _, _ = rie.invoke({"tag": "next"})  # reset, re-init: the journal is replayed and sent again
    assert status == 200
    assert '"replayed":3' in rie.logs().replace(" ", "")
    wait_until(lambda: len(api.of("Invoke")) >= 6, 10, message="the replayed items were not sent")
    names = [r.header("X-Amz-Durable-Execution-Name") for r in api.of("Invoke")]
    assert sorted(names[:3]) == sorted(names[3:])  # the same names again
    assert sorted(api.executions("orders")) == sorted(set(names))  # one execution per item
    assert [r.status for r in api.of("Invoke")] == [202] * 6
    assert drain_queue(res.dlq_url, 0, timeout=1) == []
