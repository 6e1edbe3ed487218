"""The journal: what was received and not finished comes back after a crash."""

from handler_lib import wire
from extension.journal import COMPACT_MIN_BYTES, Journal
from extension.pending import PendingQueue


def item(n: int, body: str = "m") -> wire.SqsItem:
    return wire.SqsItem(f"id-{n}", "req", n, "https://sqs/q", body)


def test_unfinished_items_are_replayed_in_order_and_finished_ones_are_not(tmp_path):
    journal = Journal(str(tmp_path))
    for n in range(5):
        journal.add(item(n))
    journal.done("id-1")
    journal.done("id-3")
    # no close(): a SIGKILLed process never closes its files
    replayed = Journal(str(tmp_path)).replayed
    assert [i.id for i in replayed] == ["id-0", "id-2", "id-4"]
    assert replayed[0] == item(0)


def test_a_torn_last_record_is_ignored_and_the_rest_replays(tmp_path):
    journal = Journal(str(tmp_path))
    journal.add(item(1))
    journal.add(item(2))
    with open(journal.path, "ab") as fh:
        fh.write(wire.HEADER.pack(500) + b"partial")
    assert [i.id for i in Journal(str(tmp_path)).replayed] == ["id-1", "id-2"]


def test_journal_stays_small_under_a_steady_load(tmp_path):
    journal = Journal(str(tmp_path))
    queue = PendingQueue(journal)
    body = "x" * 1000
    for n in range(5000):  # ~5 MB written in total, one item live at a time
        queue.add(item(n, body))
        queue.finish(f"id-{n}")
    assert journal.size_bytes() <= COMPACT_MIN_BYTES + 2048
    assert Journal(str(tmp_path)).replayed == []
