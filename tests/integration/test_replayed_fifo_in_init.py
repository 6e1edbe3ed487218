"""After a crash the journal replays what the gone extension held; its FIFO items are
delivered before the new extension's init ends, so nothing the function defers or delivers
itself later can overtake them within their group (chaos seed 3186736737: a new extension,
stopped during the first invoke, left its replayed k16 behind the k22 the function had
delivered itself). Sandbox with the built layer, moto."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3

from handler_lib import wire
from handler_lib.engine.journal import Journal
from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_queue

FUNCTION_DIR = Path(__file__).parent / "functions" / "faults"


def _crashed_extensions_journal(directory: Path, items) -> None:
    journal = Journal(str(directory))
    for item in items:
        journal.add(item.id, wire.pack_map(item.to_map()))
    journal.close()  # its lock goes as a killed process's does; the records stay
    for path in [directory, *directory.iterdir()]:  # the sandbox's processes run as another user
        path.chmod(0o777 if path.is_dir() else 0o666)


def test_replayed_fifo_items_are_delivered_before_the_init_ends(built_layer, aws_resources, tmp_path):
    res = aws_resources()
    journal = tmp_path / "journal"
    now = time.time_ns() // 1000
    replayed = [wire.SqsItem(f"k{n}", "r-gone", now, res.fifo_queue_url, json.dumps({"k": n}), group_id="g2",
                             dedup_id=f"k{n}") for n in (10, 12)]
    plain = wire.SqsItem("p1", "r-gone", now, res.queue_url, json.dumps({"k": "plain"}))
    _crashed_extensions_journal(journal, [*replayed, plain])
    env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "fn.sock"), "DEFER_JOURNAL_DIR": str(journal)}
    box = Sandbox(built_layer, FUNCTION_DIR, "app.handler", env=env, echo=False, init="eager").start()
    try:
        # no invoke yet: whatever is in the FIFO queue went in the init, and only that
        got = [b["k"] for b in drain_queue(res.fifo_queue_url, 2, timeout=2)]
        assert got == [10, 12], "\n".join(line.text for line in box.logs)[-3000:]
        logs = "\n".join(line.text for line in box.logs)
        assert "replayed FIFO items delivered before the init's end" in logs
        assert '"fifo_left":0' in logs.replace(" ", "")
        assert boto3.client("sqs").receive_message(QueueUrl=res.queue_url).get("Messages") is None
        # and the journal no longer holds them: the first invoke's drain does not send them again
        first = box.invoke({"tag": "after", "sqs": 1})
        assert first.status == 200, first.body
        box.wait_for_report(first.request_id, timeout=10)
        assert drain_queue(res.fifo_queue_url, 0, timeout=0.5) == []
        assert sorted(str(b.get("k", b.get("n"))) for b in drain_queue(res.queue_url, 2, timeout=5)) == ["0", "plain"]
    finally:
        box.stop()


def test_a_start_that_replays_no_fifo_item_does_not_drain_in_init(built_layer, aws_resources, tmp_path):
    res = aws_resources()
    journal = tmp_path / "journal"
    _crashed_extensions_journal(journal, [wire.SqsItem("p1", "r-gone", time.time_ns() // 1000, res.queue_url,
                                                       json.dumps({"k": "plain"}))])
    env = {**res.env(), "DEFER_SOCKET": str(tmp_path / "fn.sock"), "DEFER_JOURNAL_DIR": str(journal)}
    box = Sandbox(built_layer, FUNCTION_DIR, "app.handler", env=env, echo=False, init="eager").start()
    try:
        sqs = boto3.client("sqs")
        assert sqs.receive_message(QueueUrl=res.queue_url, WaitTimeSeconds=1).get("Messages") is None
        first = box.invoke({"tag": "x"})
        assert first.status == 200
        assert [b["k"] for b in drain_queue(res.queue_url, 1, timeout=5)] == ["plain"]  # with the first invoke
    finally:
        box.stop()


def test_a_replayed_fifo_item_the_service_refuses_does_not_hold_the_init(
        built_layer, aws_resources, fault_proxy, tmp_path):
    """A re-init after a reset runs inside the invoke that found the environment gone: a
    replayed FIFO item that is throttled is not waited for there (it says so, and goes with
    the invoke's drain)."""
    res = aws_resources()
    journal = tmp_path / "journal"
    _crashed_extensions_journal(journal, [wire.SqsItem("k1", "r-gone", time.time_ns() // 1000, res.fifo_queue_url,
                                                       json.dumps({"k": 1}), group_id="g", dedup_id="k1")])
    fault_proxy.throttle(service="sqs")
    env = {**res.env(), "AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_SOCKET": str(tmp_path / "fn.sock"),
           "DEFER_JOURNAL_DIR": str(journal)}
    box = Sandbox(built_layer, FUNCTION_DIR, "app.handler", env=env, echo=False, init="eager").start()
    try:
        logs = "\n".join(line.text for line in box.logs).replace(" ", "")
        said = [line for line in logs.splitlines() if "replayedFIFOitemscouldnotbedelivered" in line]
        assert said and '"fifo_left":1' in said[0], logs[-3000:]
        assert float(said[0].split('"duration_ms":')[1].split(",")[0].rstrip("}")) < 500  # no backoff waited out
        fault_proxy.clear()
        first = box.invoke({"tag": "x"})
        assert first.status == 200
        assert [b["k"] for b in drain_queue(res.fifo_queue_url, 1, timeout=10)] == [1]
    finally:
        box.stop()
