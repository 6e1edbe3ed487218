"""The journal under real faults: a full /tmp (a small tmpfs in a private mount namespace) and
a second live extension on the same journal."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.moto_server import drain_queue
from tests.support.rie import REPO_ROOT, Rie
from tests.support.waiting import die_with_parent, wait_until

FUNCTION_DIR = Path(__file__).parent / "functions" / "faults"
TMPFS_BYTES = 256 * 1024
ROOM_LEFT = 8 * 1024  # the filler leaves two pages: the journal fills after a few dozen items


def in_private_tmpfs(directory: Path, script: str) -> dict:
    """Run ``script`` (Python, prints one JSON line) with a 256 KiB tmpfs mounted on ``directory``
    in a mount namespace of its own; it gets the directory as argv[1]."""
    directory.mkdir(exist_ok=True)
    cmd = ["unshare", "--mount", "--propagation", "private", "bash", "-c",
           f'mount -t tmpfs -o size={TMPFS_BYTES} tmpfs "$1" && exec "$2" -c "$3" "$1"', "tmpfs",
           str(directory), sys.executable, textwrap.dedent(script)]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, preexec_fn=die_with_parent)
    assert done.returncode == 0, done.stderr
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "log": done.stderr}


def test_a_full_tmp_keeps_every_item_in_memory_and_leaves_no_torn_record(tmp_path):
    result = in_private_tmpfs(tmp_path / "journal", f"""
        import json, logging, shutil, sys
        from handler_lib import wire
        from handler_lib.engine.journal import Journal
        from handler_lib.engine.pending import PendingQueue
        logging.basicConfig(level=logging.INFO)
        directory = sys.argv[1]
        queue = PendingQueue(Journal(directory))
        accepted = [queue.add(wire.SqsItem(f"id-{{n}}", "r", n, "https://sqs/q", "x" * 8000)) for n in range(100)]
        full = {{"queued": len(queue), "unjournaled": queue.journal.unjournaled,
                 "errors": queue.journal.write_errors}}
        shutil.copy(queue.journal.path, {str(tmp_path / "copy.bin")!r})  # the file as the disk holds it
        for n in range(90):  # the drain delivers most of them; the rest fits now
            queue.finish(f"id-{{n}}")
        queue.maintain_journal()
        after = {{"unjournaled": queue.journal.unjournaled}}
        queue.journal.close()
        replayed = [i.id for i in Journal(directory).replayed]
        print(json.dumps({{"accepted": accepted, "full": full, "after": after, "replayed": replayed}}))
    """)
    assert all(result["accepted"])  # add never raised, nothing refused
    assert result["full"]["queued"] == 100 and result["full"]["unjournaled"] > 50
    assert result["log"].count("ERROR:defer_runner.journal:journal append failed") == 1  # once per episode
    assert "No space left on device" in result["log"]
    assert "journal writable again" in result["log"]
    assert result["after"]["unjournaled"] == 0
    assert result["replayed"] == [f"id-{n}" for n in range(90, 100)]
    (tmp_path / "written").mkdir()
    os.replace(tmp_path / "copy.bin", tmp_path / "written" / "journal.bin")
    from handler_lib.engine.journal import Journal

    on_disk = Journal(str(tmp_path / "written"))  # what the full disk held: whole records only
    assert on_disk.corrupt_records == 0 and len(on_disk.replayed) == 100 - result["full"]["unjournaled"]


def tmpfs_rie(rie_binary: Path, tmp_path: Path, journal: Path) -> Path:
    """A launcher that mounts a nearly full tmpfs on the journal directory (inside RIE's private
    mount namespace), then runs RIE."""
    journal.mkdir()
    wrapper = tmp_path / "rie-with-small-tmp"
    wrapper.write_text(f"""#!/bin/bash
mount -t tmpfs -o size={TMPFS_BYTES} tmpfs {journal} || exit 97
head -c {TMPFS_BYTES - ROOM_LEFT} /dev/zero > {journal}/filler || exit 98
exec {rie_binary} "$@"
""")
    wrapper.chmod(0o755)
    return wrapper


def test_an_extension_on_a_full_tmp_delivers_everything_and_holds_no_invoke(
        rie_binary, built_layer, aws_resources, fault_proxy, tmp_path):
    res = aws_resources()
    journal = tmp_path / "journal"
    env = {**res.env(), "AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_SOCKET": str(tmp_path / "defer.sock"),
           "DEFER_JOURNAL_DIR": str(journal)}
    with Rie(built_layer, FUNCTION_DIR, "app.handler", env=env, timeout_s=10, log_dir=tmp_path / "rie",
             rie_binary=tmpfs_rie(rie_binary, tmp_path, journal)) as rie:
        status, body, elapsed = rie.invoke({"tag": "full", "sqs": 150})
        assert status == 200, rie.logs()
        # what the journal could not take both deliver: duplicates, as at least once allows
        full = collect_tagged(res.queue_url, "full", 150, lambda: rie.logs()[-4000:])
        assert full == set(range(150))
        # every failure of the full disk ends in a recovery once the items are delivered (a busy
        # extension may fill, recover and fill again while the items still arrive)
        logs = wait_until(lambda: _settled(rie.logs()), 20,
                          message=lambda: f"journal failures not all recovered: {rie.logs()[-4000:]}")
        assert "no end-of-invoke marker before the deadline" not in logs  # the invoke was not held
        # every item arrived within its own invoke; the extension confirmed only what its
        # journal held, the function delivered the rest itself, and the extension its copies too
        held = int(re.search(r"theextensionholds(\d+)of150;thefunctiondelivered", logs)[1])
        assert 0 < held < 150 and f"theextensionholds{held}of150;thefunctiondelivered{150 - held}itemsitself" in logs
        assert '"received":150,"delivered":150,' in logs
        assert '"level":"ERROR","location":"_write_failed' in logs
        assert "journalappendfailed(Nospaceleftondevice)" in logs
        failures = logs.count('"location":"_write_failed')
        os.unlink(f"/proc/{rie.rie_pid()}/root{journal}/filler")  # space again: appends resume
        status, _, elapsed = rie.invoke({"tag": "later", "sqs": 20})
        assert status == 200
        assert collect_tagged(res.queue_url, "later", 20, lambda: rie.logs()[-4000:]) == set(range(20))
        assert rie.logs().replace(" ", "").count('"location":"_write_failed') == failures, rie.logs()[-4000:]
        assert drain_queue(res.dlq_url, 0, timeout=0.3) == []


def collect_tagged(queue_url: str, tag: str, count: int, context) -> set:
    """The ``n`` of every message tagged ``tag``, polled until ``count`` distinct ones arrived:
    duplicates and other tags' leftovers may come first."""
    seen: set = set()

    def all_seen() -> bool:
        seen.update(b["n"] for b in drain_queue(queue_url, 300, timeout=0.5)
                    if isinstance(b, dict) and b.get("tag") == tag)
        return len(seen) >= count

    wait_until(all_seen, 30, message=lambda: f"{tag}: {len(seen)} of {count} seen: {sorted(seen)}\n{context()}")
    return seen


def _settled(logs: str) -> str:
    squeezed = logs.replace(" ", "")
    failed = squeezed.count('"location":"_write_failed')
    ok = failed and squeezed.count("journalwritableagain") >= failed and '"received":150,"delivered":150,' in squeezed
    return squeezed if ok else ""


HOLDER = """
import sys
from handler_lib import wire
from handler_lib.engine.journal import Journal
from handler_lib.engine.pending import PendingQueue
queue = PendingQueue(Journal(sys.argv[1]))
for n in range(3):
    queue.add(wire.SqsItem(f"owned-{n}", "r", n, "https://sqs/q", "m"))
print("ready", flush=True)
sys.stdin.read()
"""


def test_a_second_live_extension_neither_replays_nor_writes_the_owners_journal(tmp_path, caplog):
    import logging

    from handler_lib import wire
    from handler_lib.engine.journal import Journal
    from handler_lib.engine.pending import PendingQueue

    directory = str(tmp_path / "journal")
    owner = subprocess.Popen([sys.executable, "-c", HOLDER, directory], cwd=REPO_ROOT, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=die_with_parent,
                             env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        assert owner.stdout.readline().strip() == "ready"
        with caplog.at_level(logging.WARNING, "defer_runner.journal"):
            second = PendingQueue(Journal(directory))
        assert second.journal.replayed == []
        assert second.journal.path != os.path.join(directory, "journal.bin")
        assert "held by another live extension" in caplog.text
        second.add(wire.SqsItem("second-0", "r", 0, "https://sqs/q", "m"))
        second.add(wire.SqsItem("owned-1", "r", 1, "https://sqs/q", "another item with a known id"))
        second.journal.close()  # the second one goes first, leaving its journal behind
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(5)
    after = Journal(directory)  # the owner is gone: its lock went with it; the orphan is taken over
    assert [(i.id, i.body) for i in after.replayed] == [
        ("owned-0", "m"), ("owned-1", "m"), ("owned-2", "m"),
        ("second-0", "m"), ("owned-1#2", "another item with a known id")]
    assert sorted(os.listdir(directory)) == ["journal.bin", "journal.bin.lock"]
    after.close()
    assert len(Journal(directory).replayed) == 5
