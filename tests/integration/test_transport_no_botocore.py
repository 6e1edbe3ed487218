"""An extension that delivers only SQS, SNS and EventBridge items (and their dead letters)
never imports botocore: observed in a real extension process in the sandbox, which runs the
layer's own launcher with an interpreter (``DEFER_RUNNER_PYTHON``, the launcher's own switch)
that reports every module it imports (``python -v``) to the extension's log.

With DEFER_TRANSPORT=botocore the same run imports it: the check sees what it looks for.
Powertools' logging (the extension's JSON logs) imports the bare ``botocore`` package to add
its user agent, if it is there (``aws_lambda_powertools/shared/user_agent.py``): that
``__init__`` alone is allowed; none of the SDK (session, client, endpoint, models...) is.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_queue

APP = '''
import os
from handler_lib import defer


@defer
def handler(event, context):
    tag = event["tag"]
    defer.sqs(os.environ["TEST_QUEUE_URL"], {"tag": tag, "kind": "sqs"}, attributes={"b": b"\\x00", "n": 1})
    defer.sqs(os.environ["TEST_FIFO_QUEUE_URL"], {"tag": tag, "kind": "fifo"}, group_id="g")
    defer.sns(os.environ["TEST_TOPIC_ARN"], {"tag": tag, "kind": "sns"}, subject="s")
    defer.sns(os.environ["TEST_TOPIC_ARN"], {"tag": tag, "kind": "doomed"})
    defer.event("Made", {"tag": tag, "kind": "event"}, source=os.environ["TEST_EVENT_SOURCE"],
                bus=os.environ["TEST_BUS_NAME"])
    return {"ok": True}
'''
REPO = Path(__file__).resolve().parents[2]
SDK_IMPORT = re.compile(r"^import 'botocore\.")


@pytest.fixture
def run(built_layer: Path, aws_resources, fault_proxy, tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "app.py").write_text(APP)
    # The interpreter the launcher would pick (python3 on PATH), verbose; in a folder the
    # sandbox's unprivileged user can run from (pytest's tmp_path is its owner's only, and the
    # sandbox's /tmp is its own).
    (REPO / ".cache").mkdir(exist_ok=True)
    bin_dir = Path(tempfile.mkdtemp(prefix="python-v-", dir=REPO / ".cache"))
    bin_dir.chmod(0o755)
    verbose = bin_dir / "python-v"
    verbose.write_text("#!/bin/sh\nexec python3 -v \"$@\"\n")
    verbose.chmod(0o755)
    boxes: List[Sandbox] = []

    def start(transport: str) -> Any:
        res = aws_resources()
        env = {**res.env(), "AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_TRANSPORT": transport,
               "DEFER_RUNNER_PYTHON": str(verbose), "DEFER_MAX_ATTEMPTS": "1",
               "DEFER_SOCKET": str(tmp_path / f"{transport}.sock"),
               "DEFER_JOURNAL_DIR": str(tmp_path / f"journal-{transport}")}
        box = Sandbox(built_layer, tmp_path / "task", "app.handler", timeout_s=10, memory_mb=512, env=env,
                      echo=False).start()
        boxes.append(box)
        return box, res

    yield start
    for box in boxes:
        box.stop()
    shutil.rmtree(bin_dir, ignore_errors=True)


def imported(box: Sandbox) -> List[str]:
    return [line.text for line in box.logs if line.source == "defer-runner" and line.text.startswith("import '")]


@pytest.mark.parametrize("transport", ["auto", "botocore"])
def test_sqs_sns_and_eventbridge_items_never_import_botocore(run, fault_proxy, transport: str) -> None:
    # GIVEN an extension, and an SNS entry that SNS refuses for good (so one dead letter goes out)
    fault_proxy.fail_entries("PublishBatch", match=lambda e: "doomed" in e.get("Message", ""),
                             code="InvalidParameter", sender_fault=True)
    box, res = run(transport)
    # WHEN two invokes defer SQS (standard, FIFO), SNS and EventBridge items
    for n in range(2):
        result = box.invoke({"tag": f"{transport}-{n}"})
        assert result.status == 200 and not result.function_error
        assert box.wait_for_report(result.request_id, timeout=20).status == "success"
    # THEN everything was delivered, and the refused entries dead-lettered ...
    assert sorted(m["kind"] for m in drain_queue(res.queue_url, 2, timeout=5)) == ["sqs", "sqs"]
    assert sorted(m["kind"] for m in drain_queue(res.fifo_queue_url, 2, timeout=5)) == ["fifo", "fifo"]
    assert sorted(m["kind"] for m in drain_queue(res.topic_queue_url, 2, timeout=5)) == ["sns", "sns"]
    assert sorted(m["detail"]["kind"] for m in drain_queue(res.event_queue_url, 2, timeout=5)) == ["event", "event"]
    letters = drain_queue(res.dlq_url, 2, timeout=5)
    assert [letter["error"]["code"] for letter in letters] == ["InvalidParameter"] * 2
    # ... and the extension process imported no part of botocore (the lean transport), or
    # botocore's session and clients (DEFER_TRANSPORT=botocore)
    lines = imported(box)
    assert any(line.startswith("import 'handler_lib.engine.sinks") for line in lines), "no import was reported"
    sdk = [line for line in lines if SDK_IMPORT.match(line)]
    if transport == "auto":
        assert sdk == [], sdk
        assert any(line.startswith("import 'handler_lib.engine.transport.clients'") for line in lines)
    else:
        assert any(line.startswith("import 'botocore.session'") for line in sdk)
