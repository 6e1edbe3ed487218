"""The dead letters the function's inline engine holds for a later invoke's end are written
down for the extension: a reset (the next extension's start) or a spin-down (SHUTDOWN) no
longer loses them. Real processes, killed; the real journal; moto behind the fault proxy."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from handler_lib import wire
from handler_lib.engine.dead_letters import DLQ_SUFFIX, is_dead_letter
from handler_lib.engine.journal import LETTER_SUFFIX, Journal, renamed_key
from tests.conftest import REPO_ROOT
from tests.integration.test_fallbacks import INVOKES_HANDLER, _invoke
from tests.integration.test_journal_faults import in_private_tmpfs
from tests.support.moto_server import drain_queue
from tests.support.waiting import die_with_parent, wait_until


def test_a_renamed_letter_stays_a_letter():
    assert LETTER_SUFFIX == DLQ_SUFFIX
    assert renamed_key("a1~dlq", 2) == "a1#2~dlq"
    assert is_dead_letter(wire.SqsItem(renamed_key("a1~dlq", 3), "", 0, "u", "b"))
    assert renamed_key("a1", 2) == "a1#2"
    assert renamed_key("a~dlq-not", 2) == "a~dlq-not#2"


def _dead_socket(path: Path) -> None:
    """A socket file nobody listens on: an extension's, as a stopped or gone one leaves it."""
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


def _process(res, fault_proxy, tmp_path, journal_dir):
    _dead_socket(tmp_path / "ext.sock")
    env = {**os.environ, **res.env(), "DEFER_SOCKET": str(tmp_path / "ext.sock"), "DEFER_JOURNAL_DIR": str(journal_dir),
           "AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_INLINE_BUDGET_MS": "300",
           "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"}  # on Lambda: throttling is waited for
    return subprocess.Popen([sys.executable, "-W", "ignore", "-c", INVOKES_HANDLER, res.topic_arn], cwd=REPO_ROOT,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=die_with_parent)


def _function_files(journal_dir: Path):
    return sorted(p.name for p in journal_dir.glob("journal-fn*"))


def test_letters_of_a_killed_function_are_taken_over_by_the_next_extension(fault_proxy, aws_resources, tmp_path):
    # GIVEN a function whose extension does not answer, SNS and the DLQ throttled: the invoke
    # gives its two items up and their letters wait for a later invoke's end
    res = aws_resources()
    fault_proxy.throttle(service="sns")
    fault_proxy.throttle(service="sqs")
    journal_dir = tmp_path / "journal"
    proc = _process(res, fault_proxy, tmp_path, journal_dir)
    try:
        ids = _invoke(proc, "r-1", n=2)
        assert _function_files(journal_dir) == [f"journal-fn{proc.pid}.bin", f"journal-fn{proc.pid}.bin.lock"]
        # WHEN the environment is reset (the process killed, as a reset kills it)
        proc.kill()
        proc.wait(timeout=10)
        stderr = proc.stderr.read()
    finally:
        proc.kill()
    assert stderr.count("written down for the extension") == 2, stderr
    assert "it is lost if the environment ends first" not in stderr
    # THEN the next extension's journal takes both letters over, and the file goes
    journal = Journal(str(journal_dir))
    try:
        assert sorted(item.id for item in journal.replayed) == sorted(i + DLQ_SUFFIX for i in ids)
        assert all(journal.journaled(item.id) for item in journal.replayed)
    finally:
        journal.close()
    assert _function_files(journal_dir) == []
    assert sorted(json.loads(item.body)["id"] for item in journal.replayed) == sorted(ids)  # type: ignore[union-attr]


def test_a_live_function_keeps_its_file_from_a_starting_extension_but_not_from_shutdown(
        fault_proxy, aws_resources, tmp_path):
    res = aws_resources()
    fault_proxy.throttle(service="sns")
    fault_proxy.throttle(service="sqs")
    journal_dir = tmp_path / "journal"
    proc = _process(res, fault_proxy, tmp_path, journal_dir)
    try:
        ids = _invoke(proc, "r-1", n=2)
        # an extension starting while the function lives (a restarted extension) leaves it be
        journal = Journal(str(journal_dir))
        assert journal.replayed == [] and len(_function_files(journal_dir)) == 2
        # at SHUTDOWN the runtime is stopped: the extension takes the letters, locked or not
        os.kill(proc.pid, signal.SIGSTOP)
        taken = journal.adopt_function_files({})
        assert sorted(item.id for item in taken) == sorted(i + DLQ_SUFFIX for i in ids)
        assert all(journal.journaled(item.id) for item in taken) and _function_files(journal_dir) == []
        journal.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_letters_sent_later_leave_no_file_behind(fault_proxy, aws_resources, tmp_path):
    res = aws_resources()
    fault_proxy.throttle(service="sns")
    fault_proxy.throttle(service="sqs")
    journal_dir = tmp_path / "journal"
    proc = _process(res, fault_proxy, tmp_path, journal_dir)
    letters: list = []
    try:
        ids = _invoke(proc, "r-1", n=2)
        assert len(_function_files(journal_dir)) == 2
        fault_proxy.clear()
        for n in range(2, 40):  # the letters back off up to seconds after so many throttles
            _invoke(proc, f"r-{n}")
            letters += drain_queue(res.dlq_url, 2 - len(letters), timeout=0.3)
            if len(letters) >= 2:
                break
        # the file goes with the last live letter; the function's next invoke ends it
        _invoke(proc, "r-last")
        assert _function_files(journal_dir) == []
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert sorted(letter["id"] for letter in letters) == sorted(ids)


def test_a_letter_too_big_for_the_folder_waits_in_memory_and_says_so(tmp_path):
    """The folder is the extension's journal's first: a letter that would leave it less than
    its own size free is not written (a 256 KiB tmpfs, a 150 KB letter)."""
    result = in_private_tmpfs(tmp_path / "journal", """
        import json, sys
        from handler_lib import wire
        from handler_lib._waiting_letters import WaitingLetters
        from handler_lib.engine.pending import Entry
        big = wire.SqsItem("big~dlq", "r", 0, "https://sqs/dlq", "x" * 150_000)
        small = wire.SqsItem("small~dlq", "r", 0, "https://sqs/dlq", "y" * 100)
        letters = WaitingLetters(sys.argv[1])
        entries = [Entry(item, size=len(wire.pack_map(item.to_map()))) for item in (big, small)]
        letters.keep(entries)
        held = [letters.holds(e.item.id) for e in entries]
        letters.keep(entries[1:])  # the big one went
        after = [letters.holds(e.item.id) for e in entries]
        letters.keep([])  # nothing left: the file goes
        import os
        print(json.dumps({"held": held, "after": after, "left": sorted(os.listdir(sys.argv[1]))}))
    """)
    assert result["held"] == [False, True], result["log"]
    assert result["after"] == [False, True]
    assert result["left"] == []


def test_a_forked_child_leaves_the_parents_file_and_lock_alone(tmp_path):
    script = """
import json, os, sys
from handler_lib import wire
from handler_lib import _inline
from handler_lib._waiting_letters import WaitingLetters
from handler_lib.engine.journal import Journal
from handler_lib.engine.pending import Entry
letters = WaitingLetters(sys.argv[1])
_inline._letters_file = letters
item = wire.SqsItem("a~dlq", "r", 0, "https://sqs/dlq", "body")
letters.keep([Entry(item, size=10)])
pid = os.fork()
if pid == 0:
    os._exit(0 if _inline._letters_file is None else 3)
_, status = os.waitpid(pid, 0)
other = Journal(sys.argv[1])  # the parent lives: a starting extension must not take its file
print(json.dumps({"child": os.waitstatus_to_exitcode(status), "replayed": len(other.replayed),
                  "holds": letters.holds("a~dlq")}))
"""
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "journal")], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"child": 0, "replayed": 0, "holds": True}


def _run(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, preexec_fn=die_with_parent)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_file_left_by_an_earlier_process_with_this_pid_is_sent_not_dropped(tmp_path):
    """After a reset the new runtime may get the pid the old one had; when no extension took
    the old file over (it could not read the folder, say), the new process sends its letters.
    One of them has the key of a different letter this process holds (an id collision): both
    stay written down, each under the key its queue holds it by."""
    journal_dir = tmp_path / "journal"
    result = _run("""
import json, os, sys
from handler_lib import wire
from handler_lib._waiting_letters import WaitingLetters
from handler_lib.engine.journal import FUNCTION_FILE_PREFIX, Journal
from handler_lib.engine.pending import Entry, PendingQueue
old = Journal(sys.argv[1], f"{FUNCTION_FILE_PREFIX}{os.getpid()}.bin", adopt=False)
for key, body in (("old~dlq", "left"), ("c~dlq", "left-c")):
    old.add(key, wire.pack_map(wire.SqsItem(key, "r", 0, "https://sqs/dlq", body).to_map()))
old.close()
queue = PendingQueue()
for key, body in (("new~dlq", "mine"), ("c~dlq", "mine-c")):
    queue.add(wire.SqsItem(key, "r", 0, "https://sqs/dlq", body))
letters = WaitingLetters(sys.argv[1])
found = letters.keep(queue.snapshot())
for item in found:  # what handler_lib._inline does with them
    queue.add(item)
letters.keep(queue.snapshot())
letters.close()  # as the process's end leaves it: an extension starting now takes it over
extension = Journal(sys.argv[1])
print(json.dumps({"found": sorted(i.id for i in found),
                  "queued": sorted((e.item.id, e.item.body) for e in queue.snapshot()),
                  "taken": sorted((i.id, i.body) for i in extension.replayed)}))
""", str(journal_dir))
    assert result["found"] == ["c~dlq", "old~dlq"]
    expected = [["c#2~dlq", "left-c"], ["c~dlq", "mine-c"], ["new~dlq", "mine"], ["old~dlq", "left"]]
    assert result["queued"] == expected
    assert result["taken"] == expected


def test_threads_ending_inline_deliveries_at_once_share_one_file(tmp_path):
    result = _run("""
import json, os, sys, threading
from handler_lib import wire
from handler_lib._waiting_letters import WaitingLetters
from handler_lib.engine.pending import Entry
letters = WaitingLetters(sys.argv[1])
errors = []
def churn(tag):
    for n in range(150):
        try:
            letters.keep([Entry(wire.SqsItem(f"{tag}{n}-{k}~dlq", "r", 0, "https://sqs/dlq", "b"), size=60)
                          for k in range(n % 4)])
        except Exception as exc:
            errors.append(repr(exc))
threads = [threading.Thread(target=churn, args=(t,)) for t in "ab"]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"errors": errors[:3], "files": sorted(os.listdir(sys.argv[1]))}))
""", str(tmp_path / "journal"))
    assert result["errors"] == []
    assert all(name.startswith(f"journal-fn") and name.count("-") == 1 for name in result["files"]), result


def test_a_torn_function_file_is_taken_over_and_its_copies_do_not_pile_up(tmp_path):
    """A function killed in the middle of a write leaves a torn last record: the extension
    takes the good ones over, keeps the file aside (the newest few of all functions' files)
    and removes its lock."""
    journal_dir = tmp_path / "journal"
    writer = """
import os, sys
from handler_lib import wire
from handler_lib.engine.journal import FUNCTION_FILE_PREFIX, Journal
journal = Journal(sys.argv[1], f"{FUNCTION_FILE_PREFIX}{os.getpid()}.bin", adopt=False)
for n in range(3):
    key = f"{os.getpid()}-{n}~dlq"
    journal.add(key, wire.pack_map(wire.SqsItem(key, "r", 0, "https://sqs/dlq", "x" * 100).to_map()))
size = os.path.getsize(journal.path)
os.truncate(journal.path, size - 20)  # the last record torn
os.kill(os.getpid(), 9)
"""
    for _ in range(5):
        subprocess.run([sys.executable, "-c", writer, str(journal_dir)], cwd=REPO_ROOT, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    journal = Journal(str(journal_dir))
    try:
        assert len(journal.replayed) == 10  # two good letters of each
    finally:
        journal.close()
    left = sorted(p.name for p in journal_dir.iterdir())
    assert [n for n in left if n.endswith(".lock") and n.startswith("journal-fn")] == [], left
    assert len([n for n in left if ".corrupt-" in n]) == 3, left


def test_a_spin_down_sends_the_letters_the_function_still_held(built_layer, aws_resources, fault_proxy, tmp_path):
    """End to end in the sandbox: with the extension over its memory bound (1 MiB, SQS
    throttled) the function delivers an invoke's 100 KB items itself, gives them up and their
    letters wait; the environment then spins down with no later invoke. The extension sends
    them at SHUTDOWN."""
    from lambda_sandbox import Sandbox

    res = aws_resources()
    journal_dir = tmp_path / "journal"
    env = {**res.env(), "AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "DEFER_SOCKET": str(tmp_path / "fn.sock"),
           "DEFER_JOURNAL_DIR": str(journal_dir), "DEFER_INLINE_BUDGET_MS": "300", "DEFER_MAX_QUEUED_MB": "1"}
    fault_proxy.throttle(service="sqs")  # the queue and the DLQ
    box = Sandbox(built_layer, REPO_ROOT / "tests/integration/functions/faults", "app.handler", timeout_s=3,
                  env=env, echo=False).start()
    try:
        fill = box.invoke({"tag": "fill", "big": 20})  # 2 MB the extension holds (throttled): over its bound
        assert fill.status == 200, fill.body
        box.wait_for_report(fill.request_id, timeout=15)
        late = box.invoke({"tag": "late", "big": 3})  # so these go inline, and their letters wait
        assert late.status == 200, late.body
        box.wait_for_report(late.request_id, timeout=15)
        assert any(journal_dir.glob("journal-fn*.bin")), "\n".join(line.text for line in box.logs)[-6000:]
        fault_proxy.clear()
    finally:
        box.stop()
    logs = "\n".join(line.text for line in box.logs)
    written = logs.count("written down for the extension")
    assert written and "the journal of a function that is gone" in logs, logs[-4000:]
    # every item went somewhere: to the queue (the extension's, after the throttle) or to the DLQ
    delivered: set = set()
    letters: list = []

    def all_accounted() -> bool:
        delivered.update(b["n"] for b in drain_queue(res.queue_url, 40, timeout=0.3) if b.get("tag") == "late")
        letters.extend(drain_queue(res.dlq_url, 40, timeout=0.3))
        dead = {json.loads(letter["item"]["body"])["n"] for letter in letters
                if json.loads(letter["item"]["body"])["tag"] == "late"}
        return delivered | dead >= {0, 1, 2}

    wait_until(all_accounted, 20, message=lambda: f"delivered {sorted(delivered)}, {len(letters)} letters\n"
                                                  f"{logs[-4000:]}")
    # the letters the function wrote down, each sent once its extension took them over
    budget = [letter for letter in letters if letter["error"]["code"] == "Defer.InlineBudgetExceeded"]
    assert len({letter["id"] for letter in budget}) == written, logs[-4000:]
