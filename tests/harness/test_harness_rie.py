"""RIE runs a real awslambdaric handler outside Docker, with a private /opt."""
from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.rie import write_files
from tests.support.waiting import wait_until

HANDLER = '''
import json, os
def handler(event, context):
    return {"echo": event, "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
            "endpoint": os.environ.get("AWS_ENDPOINT_URL"), "cwd": os.getcwd(),
            "opt_ls": sorted(os.listdir("/opt")), "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis()}
'''

EXTENSION = '''#!/bin/bash
# Minimal external extension: register, log every event, exit on SHUTDOWN.
API=http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension
ID=$(curl -s -D - -XPOST $API/register -H 'Lambda-Extension-Name: probe-ext' \\
     -d '{"events":["INVOKE","SHUTDOWN"]}' | tr -d '\\r' | awk 'tolower($1)=="lambda-extension-identifier:"{print $2}')
echo "[probe-ext] registered"
while true; do
  EV=$(curl -s $API/event/next -H "Lambda-Extension-Identifier: $ID")
  echo "[probe-ext] event $EV"
  case "$EV" in *SHUTDOWN*) echo "[probe-ext] bye $1"; exit 0;; esac
done
'''


def _pids_with(marker: str) -> list[int]:
    """Host PIDs whose command line contains `marker` (to check for orphans)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd:
                pids.append(int(entry.name))
    return pids


def test_rie_invokes_trivial_handler(rie_factory, empty_layer, tmp_path, moto_endpoint) -> None:
    task = write_files(tmp_path / "task", {"app.py": HANDLER})
    rie = rie_factory(empty_layer, task, "app.handler", timeout_s=5)
    status, body, elapsed = rie.invoke({"hello": "world"}, timeout=20)
    assert status == 200, body
    out = json.loads(body)
    assert out["echo"] == {"hello": "world"}
    assert out["task_root"] == str(task) == out["cwd"]
    assert out["endpoint"] == moto_endpoint  # the caller's env is passed through
    assert out["opt_ls"] == ["extensions", "python"]  # the layer is /opt inside the namespace
    assert 0 < out["remaining_ms"] <= 5000
    assert elapsed < 15
    logs = rie.wait_for_log("REPORT RequestId: " + out["request_id"])
    assert "START RequestId: " + out["request_id"] in logs
    # The bind mount stayed private to RIE's namespace: the host's /opt is not the layer.
    assert sorted(os.listdir("/opt")) != ["extensions", "python"]


def test_rie_runs_extension_and_sends_shutdown(rie_factory, tmp_path) -> None:
    layer = write_files(tmp_path / "layer", {"extensions/probe-ext": EXTENSION}, executable=True)
    (layer / "python").mkdir()
    task = write_files(tmp_path / "task", {"app.py": HANDLER})
    marker = str(task)  # the runtime's cwd-independent marker: its handler path is unique per test
    rie = rie_factory(layer, task, "app.handler", timeout_s=5)
    assert "[probe-ext]" not in rie.logs()  # extensions start lazily, on the first invoke
    for i in range(2):
        status, body, _ = rie.invoke({"i": i}, timeout=20)
        assert status == 200 and json.loads(body)["echo"] == {"i": i}
    logs = rie.wait_for_log('"eventType":"INVOKE"', count=2)
    assert "[probe-ext] registered" in logs
    rie_pid = rie.rie_pid()
    assert rie_pid is not None
    rie.stop()
    logs = rie.logs()
    assert '"shutdownReason":"SandboxTerminated"' in logs, logs
    assert "[probe-ext] bye" in logs
    # No orphans: neither RIE nor anything it started survives stop().
    assert not Path(f"/proc/{rie_pid}").exists()
    wait_until(lambda: not _pids_with(marker) and not _pids_with(str(layer)), 3,
               message="processes of the stopped RIE are still alive")


def test_rie_kill_leaves_no_orphans(rie_factory, empty_layer, tmp_path) -> None:
    task = write_files(tmp_path / "task", {"app.py": HANDLER})
    rie = rie_factory(empty_layer, task, "app.handler", timeout_s=5)
    assert rie.invoke({}, timeout=20)[0] == 200
    runtime_pids = [p for p in _pids_with("awslambdaric app.handler")
                    if Path(f"/proc/{p}/cwd").resolve() == task]
    assert runtime_pids, "the awslambdaric runtime process was not found"
    rie.kill()
    wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in runtime_pids), 3,
               message="runtime survived SIGKILL of RIE")


STUBBORN_EXTENSION = '''#!/bin/bash
# Gets SHUTDOWN but ignores it and hangs: stop() must still end everything within its bound.
API=http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension
ID=$(curl -s -D - -XPOST $API/register -H 'Lambda-Extension-Name: stubborn' \\
     -d '{"events":["INVOKE","SHUTDOWN"]}' | tr -d '\\r' | awk 'tolower($1)=="lambda-extension-identifier:"{print $2}')
curl -s $API/event/next -H "Lambda-Extension-Identifier: $ID" >/dev/null
echo "[stubborn] got invoke"
curl -s $API/event/next -H "Lambda-Extension-Identifier: $ID" >/dev/null
echo "[stubborn] ignoring shutdown"
exec sleep 1000
'''


def test_rie_stop_is_bounded_with_a_stuck_extension(rie_factory, tmp_path) -> None:
    import time

    layer = write_files(tmp_path / "layer", {"extensions/stubborn": STUBBORN_EXTENSION}, executable=True)
    task = write_files(tmp_path / "task", {"app.py": HANDLER})
    rie = rie_factory(layer, task, "app.handler", timeout_s=3)
    status, _, _ = rie.invoke({}, timeout=20)
    assert status == 200
    rie.wait_for_log("[stubborn] got invoke")
    t0 = time.monotonic()
    rie.stop(timeout=4)
    assert time.monotonic() - t0 < 8
    assert not rie.running
    assert "[stubborn] ignoring shutdown" in rie.logs()
    wait_until(lambda: not _pids_with("sleep 1000"), 3, message="stuck extension survived stop()")


def test_rie_stop_before_any_invoke(rie_factory, empty_layer, tmp_path) -> None:
    task = write_files(tmp_path / "task", {"app.py": HANDLER})
    rie = rie_factory(empty_layer, task, "app.handler")
    assert rie.running
    rie.stop()
    assert not rie.running


SENDER = '''
import os, boto3
def handler(event, context):
    sqs = boto3.client("sqs")  # endpoint from AWS_ENDPOINT_URL, as in the real layer
    sqs.send_message(QueueUrl=event["queue_url"], MessageBody=event["body"])
    return {"endpoint": sqs.meta.endpoint_url}
'''


def test_function_in_rie_reaches_moto_through_the_fault_proxy(rie_factory, empty_layer, tmp_path,
                                                              aws_resources, fault_proxy) -> None:
    from tests.support.moto_server import drain_queue

    res = aws_resources()
    task = write_files(tmp_path / "task", {"app.py": SENDER})
    rie = rie_factory(empty_layer, task, "app.handler",
                      env={"AWS_ENDPOINT_URL": fault_proxy.endpoint_url})
    status, body, _ = rie.invoke({"queue_url": res.queue_url, "body": "from-rie"}, timeout=30)
    assert status == 200, body
    assert json.loads(body)["endpoint"] == fault_proxy.endpoint_url
    assert fault_proxy.count("SendMessage") == 1
    assert drain_queue(res.queue_url, 1, timeout=5) == ["from-rie"]
