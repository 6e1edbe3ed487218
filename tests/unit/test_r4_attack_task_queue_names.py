"""A queued task whose name is not ASCII (Python identifiers may hold any letter) on a FIFO
queue: its message group is the task's name, which SQS takes only in printable ASCII. Each
.defer() raised "group_id must be ... ASCII punctuation", a group id the caller never gave."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from handler_lib import _task_queue
from handler_lib.testing import capture

FIFO = "https://sqs.us-east-1.amazonaws.com/123456789012/rapports.fifo"


def test_a_task_named_in_any_letters_can_be_queued_on_a_fifo_queue(tmp_path: Path, monkeypatch):
    (tmp_path / "rapports_r4.py").write_text(
        "from handler_lib import defer\n\n"
        f"@defer.task(queue={FIFO!r})\n"
        "def rapport_été(jour: str) -> None:\n"
        "    pass\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("rapports_r4")
    try:
        with capture() as deferred:
            item_id = module.rapport_été.defer("2026-12-05")
        (message,) = deferred.sqs
        assert message.group_id == "rapports_r4:rapport__t_"
        assert message.dedup_id == item_id
        assert _task_queue.task_of(message.body).function == "rapports_r4:rapport_été"
    finally:
        sys.modules.pop("rapports_r4", None)
