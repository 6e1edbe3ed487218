"""The journal: what was received and not finished comes back after a crash, whatever the file holds."""

import glob
import logging
import threading

from handler_lib import wire
from handler_lib.engine.journal import COMPACT_MIN_BYTES, KEEP_CORRUPT_FILES, Journal
from handler_lib.engine.pending import PendingQueue


def item(n: int, body: str = "m") -> wire.SqsItem:
    return wire.SqsItem(f"id-{n}", "req", n, "https://sqs/q", body)


def queue_in(path) -> PendingQueue:
    return PendingQueue(Journal(str(path)))


def replayed_ids(path) -> list:
    journal = Journal(str(path))
    journal.close()  # release the lock, as a killed process would
    return [i.id for i in journal.replayed]


def test_unfinished_items_are_replayed_in_order_and_finished_ones_are_not(tmp_path):
    queue = queue_in(tmp_path)
    for n in range(5):
        queue.add(item(n))
    queue.finish("id-1")
    queue.finish("id-3")
    queue.journal.close()  # a SIGKILLed process never closes its files, but its lock goes
    replayed = Journal(str(tmp_path)).replayed
    assert [i.id for i in replayed] == ["id-0", "id-2", "id-4"]
    assert replayed[0] == item(0)


def test_a_record_larger_than_the_wire_cap_replays_with_all_the_others(tmp_path):
    queue = queue_in(tmp_path)
    for n in range(30):  # item 7 is a dead letter's size: above the wire's frame cap
        queue.add(item(n, "é" * (wire.MAX_FRAME_BYTES // 2 + 1000) if n == 7 else "m"))
    queue.journal.close()
    journal = Journal(str(tmp_path))
    assert [i.id for i in journal.replayed] == [f"id-{n}" for n in range(30)]
    assert len(journal.replayed[7].body.encode()) > wire.MAX_FRAME_BYTES
    assert journal.corrupt_records == 0


def test_garbage_in_the_middle_costs_nothing_and_the_damaged_file_is_kept_as_it_was(tmp_path, caplog):
    queue = queue_in(tmp_path / "written")
    for n in range(10):
        queue.add(item(n))
    middle = queue.journal.size_bytes()  # a record boundary
    for n in range(10, 20):
        queue.add(item(n))
    queue.finish("id-12")
    queue.journal.close()
    data = open(queue.journal.path, "rb").read()
    original = data[:middle] + b"\xff" * 37 + b"DJr1" + b"\x00" * 20 + data[middle:]  # e.g. a stray write
    (tmp_path / "journal.bin").write_bytes(original)
    with caplog.at_level(logging.ERROR, "defer_runner.journal"):
        journal = Journal(str(tmp_path))
    assert [i.id for i in journal.replayed] == [f"id-{n}" for n in range(20) if n != 12]
    assert journal.corrupt_records == 1
    assert "1 corrupt records skipped" in caplog.text
    (kept,) = glob.glob(journal.path + ".corrupt-*")
    assert open(kept, "rb").read() == original  # never rewritten, never truncated
    journal.close()
    clean = Journal(str(tmp_path))  # the fresh file holds the recovered items, undamaged
    assert [i.id for i in clean.replayed] == [f"id-{n}" for n in range(20) if n != 12]
    assert clean.corrupt_records == 0


def test_a_flipped_byte_costs_only_its_own_record(tmp_path):
    queue = queue_in(tmp_path)
    for n in range(5):
        queue.add(item(n, "b" * 100))
    queue.journal.close()
    data = bytearray(open(queue.journal.path, "rb").read())
    data[len(data) * 2 // 5 + 60] ^= 0x01  # inside the body of the third record
    open(queue.journal.path, "wb").write(data)
    assert replayed_ids(tmp_path) == ["id-0", "id-1", "id-3", "id-4"]


def test_a_torn_last_record_is_ignored_and_the_rest_replays(tmp_path):
    queue = queue_in(tmp_path)
    queue.add(item(1))
    queue.add(item(2))
    queue.add(item(3, "x" * 500))
    queue.journal.close()
    data = open(queue.journal.path, "rb").read()
    open(queue.journal.path, "wb").write(data[:-200])  # killed in the middle of a write
    assert replayed_ids(tmp_path) == ["id-1", "id-2"]
    (kept,) = glob.glob(queue.journal.path + ".corrupt-*")
    assert open(kept, "rb").read() == data[:-200]


def test_only_the_newest_damaged_files_are_kept(tmp_path):
    for n in range(KEEP_CORRUPT_FILES + 2):
        queue = queue_in(tmp_path)
        queue.add(item(n))
        queue.journal.close()
        with open(queue.journal.path, "ab") as fh:
            fh.write(b"torn")
        Journal(str(tmp_path)).close()
    assert len(glob.glob(str(tmp_path / "journal.bin.corrupt-*"))) == KEEP_CORRUPT_FILES
    assert replayed_ids(tmp_path) == [f"id-{n}" for n in range(KEEP_CORRUPT_FILES + 2)]


def test_journal_stays_small_under_a_steady_load(tmp_path):
    queue = queue_in(tmp_path)
    body = "x" * 1000
    for n in range(5000):  # ~5 MB written in total, one item live at a time
        queue.add(item(n, body))
        queue.finish(f"id-{n}")
        queue.maintain_journal()
    assert queue.journal.size_bytes() <= COMPACT_MIN_BYTES + 2048
    queue.journal.close()
    assert replayed_ids(tmp_path) == []


def test_bytes_written_stay_within_a_constant_factor_of_bytes_added(tmp_path):
    """1,000 x 100 KB with 40 items live at any time: compaction is linear in the real live bytes."""
    queue = queue_in(tmp_path)
    body = "x" * 100_000
    added = 0
    for n in range(1000):
        queue.add(item(n, body))
        added += queue.get(f"id-{n}").size
        if n >= 40:
            queue.finish(f"id-{n - 40}")
        queue.maintain_journal()  # as often as the runner could: after every drain
    journal = queue.journal
    assert journal.compactions > 0
    assert journal.bytes_written <= 3 * added
    assert journal.size_bytes() <= 2 * queue.queued_bytes + COMPACT_MIN_BYTES + 200_000
    journal.close()
    assert replayed_ids(tmp_path) == [f"id-{n}" for n in range(960, 1000)]


def test_appends_and_finishes_during_a_compaction_are_kept(tmp_path):
    queue = queue_in(tmp_path)
    body = "y" * 20_000
    for n in range(200):
        queue.add(item(n, body))
    stop = threading.Event()

    def compact_repeatedly():
        while not stop.is_set():
            queue.journal._needs_rewrite = True  # force a full rewrite every time
            queue.journal.maintain()

    compactor = threading.Thread(target=compact_repeatedly)
    compactor.start()
    try:
        for n in range(200, 1200):
            queue.add(item(n, body))
            queue.finish(f"id-{n - 200}")
    finally:
        stop.set()
        compactor.join()
    assert queue.journal.compactions > 0
    queue.journal.close()
    assert replayed_ids(tmp_path) == [f"id-{n}" for n in range(1000, 1200)]


def test_a_second_journal_in_one_directory_takes_a_name_of_its_own(tmp_path, caplog):
    first = queue_in(tmp_path)
    first.add(item(1))
    with caplog.at_level(logging.WARNING, "defer_runner.journal"):
        second = Journal(str(tmp_path))
    assert second.path != first.journal.path and second.replayed == []
    assert "held by another live extension" in caplog.text
    second.close()
    first.journal.close()
    assert replayed_ids(tmp_path) == ["id-1"]
