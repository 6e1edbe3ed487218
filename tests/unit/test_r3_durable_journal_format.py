"""The journal's salted format: only records this journal wrote replay, and never one from
inside another record's span (tests/integration/test_r3_durable_journal_forgery.py has the
attack with a killed writer)."""

from __future__ import annotations

import glob

from handler_lib import wire
from handler_lib.engine.journal import FILE_HEAD, RECORD_HEAD, Journal, Salt
from handler_lib.engine.pending import PendingQueue


def item(n: int, body: str = "m") -> wire.SqsItem:
    return wire.SqsItem(f"id-{n}", "req", n, "https://sqs/q", body)


def replayed_ids(path) -> list:
    journal = Journal(str(path))
    journal.close()
    return [i.id for i in journal.replayed]


def test_each_journal_has_a_salt_of_its_own_and_keeps_it_through_compaction(tmp_path):
    first, second = Journal(str(tmp_path / "a")), Journal(str(tmp_path / "b"))
    first.add("k", b"\x80")
    second.add("k", b"\x80")
    salt = Salt.of(open(first.path, "rb").read())
    assert salt is not None and salt.salt != Salt.of(open(second.path, "rb").read()).salt
    first._needs_rewrite = True
    first.maintain()
    assert first.compactions == 1 and Salt.of(open(first.path, "rb").read()).salt == salt.salt


def test_a_record_of_another_journal_is_not_replayed(tmp_path):
    mine, other = PendingQueue(Journal(str(tmp_path / "mine"))), PendingQueue(Journal(str(tmp_path / "other")))
    mine.add(item(1))
    other.add(wire.TaskItem("stranger", "req", 0, "billing:refund", ["acct"]))
    mine.add(item(2))
    mine.journal.close()
    other.journal.close()
    data = open(mine.journal.path, "rb").read()
    foreign = open(other.journal.path, "rb").read()[FILE_HEAD.size:]  # a whole, valid record of its own journal
    boundary = FILE_HEAD.size + (len(data) - FILE_HEAD.size) // 2
    open(mine.journal.path, "wb").write(data[:boundary] + foreign + data[boundary:])
    assert replayed_ids(tmp_path / "mine") == ["id-1", "id-2"]


def test_a_valid_record_inside_a_damaged_records_span_is_never_replayed(tmp_path):
    """Even bytes that are a genuine record of this very journal (salt and all) do not replay
    from inside another record: the damaged record's intact head gives its span, skipped whole."""
    queue = PendingQueue(Journal(str(tmp_path)))
    queue.add(item(1))
    salt = Salt.of(open(queue.journal.path, "rb").read())
    inner = salt.add_record("inner", wire.pack_map(wire.TaskItem("inner", "", 0, "billing:refund", []).to_map()))
    at = queue.journal.size_bytes()
    queue.add(wire.TaskItem("outer", "req", 0, "images:thumbnail", [b"\x00" * 50 + inner + b"\x00" * 50]))
    queue.add(item(3))
    queue.journal.close()
    data = bytearray(open(queue.journal.path, "rb").read())
    data[at + RECORD_HEAD.size + 10] ^= 0xFF  # the outer record's body, before the inner record
    open(queue.journal.path, "wb").write(bytes(data))
    assert replayed_ids(tmp_path) == ["id-1", "id-3"]


def test_a_file_with_a_torn_header_is_kept_aside_and_a_fresh_journal_works(tmp_path):
    (tmp_path / "journal.bin").write_bytes(b"DJr2\x01\x02")  # killed while writing its header
    journal = Journal(str(tmp_path))
    assert journal.replayed == [] and journal.corrupt_records == 1
    assert len(glob.glob(journal.path + ".corrupt-*")) == 1
    PendingQueue(journal).add(item(1))
    journal.close()
    assert replayed_ids(tmp_path) == ["id-1"]


def test_an_append_during_a_compaction_of_a_file_still_empty_is_kept_whole(tmp_path):
    journal = Journal(str(tmp_path))
    calls = []

    class ItemArrivesDuringTheCopy(Salt):
        __slots__ = ()

        def header(self) -> bytes:
            calls.append(1)
            if len(calls) == 1:  # the compaction's copy has begun (without the lock): an item arrives
                PendingQueue(journal).add(item(7))
            return super().header()

    journal._salt = ItemArrivesDuringTheCopy(journal._salt.salt)
    journal._needs_rewrite = True
    journal.maintain()
    assert len(calls) >= 2 and journal.compactions == 1 and journal.journaled("id-7")
    journal.close()
    reread = Journal(str(tmp_path))
    assert [i.id for i in reread.replayed] == ["id-7"] and reread.corrupt_records == 0
