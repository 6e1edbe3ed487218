"""Every item settles, under RIE with the built layer: tasks that cannot be imported, forged
names and forged hellos, failing tasks, and a spin-down with AWS unreachable.

Each test counts what went in against what the DLQ, the logs and the metrics say came out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.moto_server import drain_queue

FUNCTION_DIR = Path(__file__).parent / "functions" / "tasks"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lambda_env(rie_function):
    start_function, res, proxy = rie_function
    return (lambda timeout_s=4, **env: start_function(FUNCTION_DIR, timeout_s, **env)), res, proxy


def test_tasks_that_cannot_be_imported_are_dead_lettered_and_hold_no_invoke(lambda_env):
    start, res, _ = lambda_env
    rie = start(timeout_s=4)
    names = ["exploding:run", "boom:run", ".x:y", "jobs:missing"]
    status, _, _ = rie.invoke({"tag": "bad", "raw_tasks": names, "sqs": 2})
    assert status == 200
    for n in range(3):  # the old runner held each of these to its deadline (3.7 s of 4 s)
        status, _, elapsed = rie.invoke({"tag": f"next{n}", "sqs": 1})
        assert status == 200 and elapsed < 2.0
    letters = drain_queue(res.dlq_url, 4, timeout=3)
    assert sorted(l["item"]["fn"] for l in letters) == sorted(names)
    assert {l["error"]["code"] for l in letters} == {"Defer.TaskNotFound"}
    by_name = {l["item"]["fn"]: l for l in letters}
    assert "SystemExit" in by_name["exploding:run"]["error"]["message"]
    assert "Boom" in by_name["boom:run"]["error"]["message"]
    assert len(drain_queue(res.queue_url, 5, timeout=3)) == 5


def test_a_failing_task_logs_every_attempt_with_its_own_traceback(lambda_env):
    start, res, _ = lambda_env
    rie = start()
    status, body, _ = rie.invoke({"tag": "fail", "failing": 1})
    (item_id,) = json.loads(body)["ids"]
    (letter,) = drain_queue(res.dlq_url, 1, timeout=5)
    assert letter["id"] == item_id and letter["attempts"] == 2
    assert letter["error"]["code"] == "Defer.TaskFailed"
    trace = letter["error"]["traceback"]
    assert trace.startswith("Traceback") and "in fails" in trace and "in _check" in trace
    assert "handler_lib/engine/tasks.py" not in trace  # the task's frames, not the runner's
    logs = rie.logs()
    for attempt in (1, 2):  # the extension saw LAMBDA_TASK_ROOT: jobs.py was found and ran
        assert f"failed on attempt {attempt} for item {item_id}" in logs
    assert logs.count("ValueError: job 0 refused") >= 2


FORGER = """
import socket, sys, time
from handler_lib import wire
evil = sys.argv[2]
hello = wire.pack_map({"v": wire.PROTOCOL_VERSION, "k": "hello", "pid": 1,  # as older layers sent it
                      "task_root": evil, "sys_path": [evil]})
task = wire.encode(wire.TaskItem("forged-evil", "", time.time_ns() // 1000, "evil_mod:run"))
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
    s.connect(sys.argv[1])
    s.sendall(wire.HEADER.pack(len(hello)) + hello + task)
"""


def test_a_forged_hello_cannot_make_the_extension_import_from_its_paths(lambda_env, tmp_path):
    start, res, _ = lambda_env
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "evil-ran"
    (evil / "evil_mod.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from handler_lib import defer\n\n@defer.task\ndef run():\n    pass\n")
    rie = start()
    rie.invoke({"tag": "warm"})  # the extension starts on the first invoke
    subprocess.run([sys.executable, "-c", FORGER, str(tmp_path / "defer.sock"), str(evil)],
                   cwd=REPO_ROOT, check=True, timeout=10)
    rie.invoke({"tag": "drain"})
    (letter,) = drain_queue(res.dlq_url, 1, timeout=5)
    assert letter["id"] == "forged-evil" and letter["error"]["code"] == "Defer.TaskNotFound"
    assert "not found under the function's code or layers" in letter["error"]["message"]
    assert not marker.exists()


def emf(logs: str) -> list:
    found = []
    for line in logs.splitlines():
        start = line.find('{"_aws"')
        if start >= 0:
            found.append(json.loads(line[start:]))
    return found


def test_spin_down_with_aws_unreachable_logs_and_counts_each_item_as_lost(lambda_env):
    start, res, proxy = lambda_env
    rie = start(timeout_s=6, DEFER_DEADLINE_MARGIN_MS="5000")  # each drain gets ~1 s
    rie.invoke({"tag": "warm"})  # a slow cold start must not eat the drain's window
    proxy.refuse_connections()
    status, body, _ = rie.invoke({"tag": "down", "sqs": 6})
    ids = json.loads(body)["ids"]
    rie.stop()  # SIGTERM: SHUTDOWN (a spin-down) with the endpoint still down
    logs = rie.logs()
    proxy.accept_connections()
    assert drain_queue(res.dlq_url, 0, timeout=1) == []  # no letter could be sent ...
    assert "dead-lettered" not in logs  # ... so none is claimed
    errors = [line for line in logs.splitlines() if '"level":"ERROR"' in line.replace(" ", "")
              and "gave up on" in line]
    assert sorted(i for i in ids if any(i in line for line in errors)) == sorted(ids)
    assert len(errors) == len(ids)  # one ERROR line per item
    assert not any('"item":' in line for line in errors)  # no payload unless DEFER_LOG_PAYLOADS
    shutdown = [m for m in emf(logs) if "given_up" in m][-1]
    assert shutdown["dead_lettered"] == [0.0] and shutdown["given_up"] == [len(ids)]
    assert shutdown["enqueued"] == [0.0] and shutdown["carried_over"] == [0.0]  # letters are not new items
