"""More requests open at once than the extension used to keep receipts for, over the real
socket reader and the real runner: every ack confirms its own invoke's items.

The function side is handler_lib's own socket client, one connection per worker process as on
Managed Instances; the extension side is the real ChannelServer, Runner and PendingQueue with a
journal of the test's own."""

from __future__ import annotations

from typing import Iterator

import pytest

from extension.channel import ChannelServer
from extension.listener import listen
from extension.runner import Runner
from handler_lib import handoff, wire
from handler_lib._channel import ChannelUnavailable, SocketChannel
from handler_lib.config import Config
from handler_lib.engine.drain import Drainer
from handler_lib.engine.journal import Journal
from handler_lib.engine.pending import PendingQueue
from handler_lib.engine.tasks import TaskRunner
from tests.support.waiting import wait_until

OPEN_AT_ONCE = handoff.RECENT_REQUESTS + 44


@pytest.fixture
def extension(tmp_path) -> Iterator[tuple]:
    sock = str(tmp_path / "defer.sock")
    config = Config(deadline_margin_ms=0, socket_path=sock, journal_dir=str(tmp_path / "journal"))
    queue = PendingQueue(Journal(config.journal_dir))
    channel = ChannelServer(sock, listen(sock), max_connections=OPEN_AT_ONCE + 16)
    runner = Runner(config, queue, Drainer(queue, {}, TaskRunner(layer_roots=[]), config), channel)
    channel.start(runner.handlers())
    yield sock, runner
    channel.close()
    queue.journal.close()


def connected(sock: str) -> SocketChannel:
    """A worker process's connection (a burst of them may find the accept backlog full: retry)."""
    worker = SocketChannel(sock, wrapped=True)

    def attempt() -> bool:
        try:
            worker.connect()
            return True
        except ChannelUnavailable:
            return False

    wait_until(attempt, 10, message="cannot connect to the reader")
    return worker


def test_every_open_invoke_is_confirmed_whatever_the_number_open_at_once(extension):
    sock, runner = extension
    workers = [connected(sock) for _ in range(OPEN_AT_ONCE)]
    try:
        for n, worker in enumerate(workers):  # every request is open (its item sent) before any ends
            worker.send(wire.encode(wire.SqsItem(f"i{n}", f"r{n}", 0, "https://sqs/q", f"m{n}")))
        acks = [worker.end_invoke(wire.EndOfInvoke(f"r{n}", 1, 0, 0), timeout_s=10)
                for n, worker in enumerate(workers)]
    finally:
        for worker in workers:
            worker.close()
    short = [n for n, ack in enumerate(acks) if ack is None or ack.count != 1]
    assert short == [], f"{len(short)} invokes not confirmed (the function would deliver them again)"
    assert len(runner.queue) == OPEN_AT_ONCE
