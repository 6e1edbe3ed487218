"""Payload bytes never pass as journal records, whatever happened to the record that holds them.

A task argument can carry bytes a user uploaded (an SQS message, a file). An attacker who
knows the journal's format puts complete, checksum-valid records in them: an ``add`` of a
``billing:refund`` task. The journal must replay only what the extension journaled: when
the record holding those bytes is torn (its writer killed mid-write) or damaged, replay
resyncs, and it must never accept a record from inside another record's span nor bytes
that merely look like a record.

Real parts: the real Journal and PendingQueue in a writer process of their own, killed with
SIGKILL (as a crashed extension is); the tear is what a kill in the middle of that write
leaves on disk: the file ends inside the record."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import msgpack

from handler_lib import wire
from tests.support.rie import REPO_ROOT
from tests.support.waiting import die_with_parent

FORGED_ID = "forged-refund"


def forged_records() -> bytes:
    """Records an attacker can build from the documented format (magic | length | CRC32 of the
    length and the body | body), each an ``add`` of a task the function never deferred."""
    task = wire.TaskItem(FORGED_ID, "", 0, "billing:refund", ["acct-1", 1_000_000])
    out = b""
    for magic in (b"DJr1", b"DJr2"):  # the format as it was, and a guess at the next one
        body = msgpack.packb({"op": "add", "key": FORGED_ID + magic.decode(),
                              "item": wire.pack_map(task._replace(id=FORGED_ID + magic.decode()).to_map())},
                             use_bin_type=True)
        length = len(body)
        crc = zlib.crc32(body, zlib.crc32(length.to_bytes(4, "big")))
        out += struct.pack(">4sII", magic, length, crc) + body
    return out


UPLOAD = b"\x89PNG...." + forged_records() + b"\x00" * 4096  # the forgery, then the rest of the upload

WRITER = """
import sys
from handler_lib import wire
from handler_lib.engine.journal import Journal
from handler_lib.engine.pending import PendingQueue
queue = PendingQueue(Journal(sys.argv[1]))
for n in range(3):
    queue.add(wire.SqsItem(f"before-{n}", "r", n, "https://sqs/q", "m"))
upload = bytes.fromhex(sys.stdin.readline().strip())
at = queue.journal.size_bytes()  # where the task's record begins
queue.add(wire.TaskItem("thumbnail-1", "r", 3, "images:thumbnail", [upload]))
print("written", at, flush=True)
sys.stdin.read()
"""


def write_then_kill(directory: Path) -> tuple:
    """The writer journals three items and the task with the upload, then is SIGKILLed; returns
    the journal's path and the offset of the task's record in it."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(directory)], cwd=REPO_ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=die_with_parent,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        writer.stdin.write(UPLOAD.hex() + "\n")
        writer.stdin.flush()
        said, at = writer.stdout.readline().split()
        assert said == "written"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(5)
    return directory / "journal.bin", int(at)


def replayed(directory: Path) -> list:
    from handler_lib.engine.journal import Journal

    journal = Journal(str(directory))
    journal.close()
    return journal.replayed


def test_a_torn_record_does_not_let_the_records_in_its_payload_replay(tmp_path):
    path, _ = write_then_kill(tmp_path / "journal")
    data = path.read_bytes()
    inside = data.index(forged_records()) + len(forged_records()) + 100  # past the forgery, before the end
    assert inside < len(data)
    path.write_bytes(data[:inside])  # the write of the task's record was cut here
    items = replayed(tmp_path / "journal")
    assert [i.id for i in items] == ["before-0", "before-1", "before-2"]
    assert not any(isinstance(i, wire.TaskItem) for i in items)


def test_a_damaged_record_head_does_not_let_the_records_in_its_payload_replay(tmp_path):
    path, head = write_then_kill(tmp_path / "journal")
    data = bytearray(path.read_bytes())
    for offset in range(4, 12):  # the length and check fields of the task's record, overwritten
        data[head + offset] ^= 0xA5
    path.write_bytes(bytes(data))
    items = replayed(tmp_path / "journal")
    assert [i.id for i in items] == ["before-0", "before-1", "before-2"]


def test_an_intact_record_with_records_in_its_payload_replays_as_itself(tmp_path):
    write_then_kill(tmp_path / "journal")
    items = replayed(tmp_path / "journal")
    assert [i.id for i in items] == ["before-0", "before-1", "before-2", "thumbnail-1"]
    assert items[3].args == [UPLOAD]
