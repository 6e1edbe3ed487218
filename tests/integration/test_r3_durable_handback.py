"""The hand-off over a full journal, piece by piece: the real Journal on a real 64 KiB tmpfs,
the real Runner and routing (the in-memory channel), and a recording sink.

An item is confirmed only once journaled; what the journal cannot take is handed back (the
function delivers it, the extension lets it go: no needless duplicate); at a reset, what is
still held in memory only is dead-lettered or logged at ERROR one by one, never counted as
staying in the journal."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from extension.lambda_api import ShutdownEvent
from extension.memory_channel import MemoryChannel
from extension.runner import Runner
from handler_lib import handoff, wire
from handler_lib.config import Config
from handler_lib.engine.drain import Drainer
from handler_lib.engine.journal import Journal
from handler_lib.engine.pending import PendingQueue
from handler_lib.engine.sinks.base import Sink
from handler_lib.engine.tasks import TaskRunner

BODY = "x" * 1500  # a record of about 1.6 KiB: a few dozen fit in the room left


class RecordingSink(Sink):
    service = "sqs"

    def __init__(self, down: bool = False) -> None:
        super().__init__(lambda service: None)
        self.sent: List[str] = []
        self.down = down

    def entry(self, item: Any, entry_id: str) -> Dict[str, Any]:
        return {"Id": entry_id, "item_id": item.id}

    def entry_size(self, item: Any) -> int:
        return len(item.body)

    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        if self.down:  # an outage: retried with backoff, using no attempts
            raise ConnectionRefusedError("the endpoint is down")
        self.sent += [e["item_id"] for e in entries]
        return {"Failed": []}


@pytest.fixture
def small_tmp(tmp_path) -> Iterator[Path]:
    """A 64 KiB tmpfs of the test's own (a real filesystem limit)."""
    directory = tmp_path / "tmpfs"
    directory.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def fill(directory: Path, leave: int) -> Path:
    """Fill the tmpfs but ``leave`` bytes (a whole number of pages)."""
    filler = directory / "filler"
    total = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    filler.write_bytes(b"\0" * (total - leave))
    return filler


def make(journal_dir: Path, sink: RecordingSink, dlq: str = "") -> Any:
    config = Config(deadline_margin_ms=0, dlq_url=dlq or None)
    queue = PendingQueue(Journal(str(journal_dir)))
    drainer = Drainer(queue, {"sqs": sink}, TaskRunner(layer_roots=[]), config)
    channel = MemoryChannel()
    runner = Runner(config, queue, drainer, channel)
    channel.start(runner.handlers())
    return channel, runner


def item(n: int, request_id: str) -> wire.SqsItem:
    return wire.SqsItem(f"i{n}", request_id, 0, "https://sqs/q", BODY)


def test_only_journaled_items_are_confirmed_and_the_rest_is_handed_back_and_kept(small_tmp):
    sink = RecordingSink()
    fill(small_tmp, leave=16 * 1024)
    channel, runner = make(small_tmp / "journal", sink)
    peer = channel.connect()
    sent = [item(n, "r1") for n in range(30)]
    for it in sent:
        channel.send(peer, it)
    journal = runner.queue.journal
    assert journal.unjournaled > 0  # the disk did fill up
    ack = channel.send(peer, wire.EndOfInvoke("r1", len(sent), 0, 0))
    journaled = [it.id for it in sent if journal.journaled(it.id)]
    assert ack is not None and ack.ids == journaled and ack.count == len(journaled) < len(sent)
    left_to_function = handoff.unconfirmed(sent, ack)
    assert [it.id for it in left_to_function] == [it.id for it in sent if it.id not in journaled]
    # the extension keeps them too: the handler's own delivery may come after its end marker
    # (post-response work), when the environment can freeze once this drain ends
    assert sorted(e.item.id for e in runner.queue.snapshot()) == sorted(it.id for it in sent)
    runner.drainer.drain(time.monotonic() + 5)
    assert sorted(sink.sent) == sorted(it.id for it in sent)
    assert journal.unjournaled == 0


def test_loose_items_the_journal_cannot_take_are_handed_back_too(small_tmp):
    fill(small_tmp, leave=8 * 1024)
    channel, runner = make(small_tmp / "journal", RecordingSink())
    peer = channel.connect()
    sent = [item(n, "") for n in range(12)]
    for it in sent:
        channel.send(peer, it)
    ack = channel.send(peer, wire.EndOfInvoke("", len(sent), 0, 0))
    journal = runner.queue.journal
    journaled = [it.id for it in sent if journal.journaled(it.id)]
    assert 0 < len(journaled) < len(sent)
    assert ack is not None and sorted(ack.ids or []) == sorted(journaled) and ack.count < len(sent)
    assert {it.id for it in handoff.unconfirmed(sent, ack)} == {it.id for it in sent} - set(journaled)


def test_once_space_frees_items_are_journaled_and_confirmed_by_their_count(small_tmp):
    filler = fill(small_tmp, leave=8 * 1024)
    channel, runner = make(small_tmp / "journal", RecordingSink())
    peer = channel.connect()
    for n in range(12):
        channel.send(peer, item(n, "r1"))
    assert channel.send(peer, wire.EndOfInvoke("r1", 12, 0, 0)).count < 12
    filler.unlink()
    runner.queue.maintain_journal()
    for n in range(12, 24):
        channel.send(peer, item(n, "r2"))
    assert channel.send(peer, wire.EndOfInvoke("r2", 12, 0, 0)) == wire.Ack("r2", 12)


def test_at_a_reset_what_the_journal_does_not_hold_is_dead_lettered_or_logged_one_by_one(small_tmp, caplog):
    sink = RecordingSink(down=True)  # the queue's endpoint is down: nothing is delivered
    fill(small_tmp, leave=8 * 1024)
    channel, runner = make(small_tmp / "journal", sink)
    peer = channel.connect()
    for n in range(12):  # a handler killed by its timeout: no end marker, nothing handed back
        channel.send(peer, item(n, "r1"))
    journal = runner.queue.journal
    journaled = {f"i{n}" for n in range(12) if journal.journaled(f"i{n}")}
    memory_only = {f"i{n}" for n in range(12)} - journaled
    assert journaled and memory_only
    with caplog.at_level(logging.WARNING):
        runner.on_shutdown(ShutdownEvent("timeout", int((time.time() + 2) * 1000)))
    given_up = [r for r in caplog.records if r.levelno == logging.ERROR and r.getMessage().startswith("gave up on")]
    assert {r.item_id for r in given_up} == memory_only  # an ERROR line each (no DLQ set)
    assert f"{len(journaled)} undelivered items stay in the journal" in caplog.text
    runner.queue.journal.close()
    assert {i.id for i in Journal(str(small_tmp / "journal")).replayed} == journaled
