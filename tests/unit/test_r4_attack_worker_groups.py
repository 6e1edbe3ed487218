"""handler_lib.worker on FIFO records, in this process with real task modules in a tmp dir: a
failed record holds back the later records of its own message group only; a record that names
no group (not how Lambda builds them, but a forged or hand-made event) is ordered against
every other record."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from handler_lib import _task_queue, wire, worker

ARN = "arn:aws:sqs:us-east-1:123456789012:jobs.fifo"


@pytest.fixture
def tasks(tmp_path: Path, monkeypatch):
    (tmp_path / "r4_group_jobs.py").write_text(
        "import os\n\n"
        "from handler_lib import defer\n\n"
        "def note(what):\n"
        "    with open(os.environ['R4_RUNS'], 'a') as f:\n"
        "        f.write(what + '\\n')\n\n"
        "@defer.task(queue='https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo')\n"
        "def ok(n: int) -> None:\n"
        "    note(f'ok {n}')\n\n"
        "@defer.task(queue='https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo')\n"
        "def bad(n: int) -> None:\n"
        "    note(f'bad {n}')\n"
        "    raise RuntimeError('bad')\n")
    monkeypatch.setenv("DEFER_TASK_ROOT", str(tmp_path))
    monkeypatch.setenv("R4_RUNS", str(tmp_path / "runs.txt"))
    monkeypatch.delenv("DEFER_DLQ_URL", raising=False)
    monkeypatch.setattr(worker, "_runner", None)
    yield lambda: (tmp_path / "runs.txt").read_text().splitlines()
    sys.modules.pop("r4_group_jobs", None)


def record(message_id: str, function: str, n: int, group: Optional[str]) -> Dict[str, Any]:
    item = wire.TaskItem(f"id-{message_id}", "", 0, f"r4_group_jobs:{function}", [n], {}, 3)
    attributes = {"ApproximateReceiveCount": "1"}
    if group is not None:
        attributes["MessageGroupId"] = group
    return {"messageId": message_id, "body": _task_queue.body_of(item), "attributes": attributes,
            "eventSourceARN": ARN}


def failed(*records: Dict[str, Any]) -> List[str]:
    return [f["itemIdentifier"] for f in worker.handler({"Records": list(records)}, None)["batchItemFailures"]]


def test_a_failure_holds_back_its_own_group_only(tasks):
    assert failed(record("a", "bad", 1, "g1"), record("b", "ok", 2, "g2"), record("c", "ok", 3, "g1")) == ["a", "c"]
    assert tasks() == ["bad 1", "ok 2"]


def test_a_record_without_a_group_is_ordered_against_every_record(tasks):
    assert failed(record("a", "bad", 1, None), record("b", "ok", 2, "g2")) == ["a", "b"]
    assert failed(record("c", "bad", 3, "g1"), record("d", "ok", 4, None), record("e", "ok", 5, "g3")) == ["c", "d", "e"]
    assert tasks() == ["bad 1", "bad 3"]
