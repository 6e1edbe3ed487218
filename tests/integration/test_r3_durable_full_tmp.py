"""A full /tmp: an item is confirmed to the function only once the journal holds it.

Items the journal cannot take stay in the extension's memory only; an ack that counted them
as held made the function forget them, and a kill or reset of the extension then lost them
(the next start replays what the file holds, which is not them). Here the journal directory
is a nearly full tmpfs inside RIE's private mount namespace, the extension (the built layer)
is killed with SIGKILL after the handler returned, while its delivery is stalled by the fault
proxy, and RIE re-inits it on the next invoke; the function's own deliveries go straight to moto (its process points
its endpoint there at import), so what the function delivered and what the extension
delivered are told apart, and nothing the extension had in flight can land by accident.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from tests.support.moto_server import drain_queue
from tests.support.rie import Rie, write_files
from tests.support.waiting import wait_until

TMPFS_BYTES = 256 * 1024
ROOM_LEFT = 8 * 1024  # a few dozen records fit; the rest of the invoke's items do not
ITEMS = 100

APP = '''
import os

# This process only (the extension keeps the fault proxy): the function's own deliveries go to moto.
os.environ["AWS_ENDPOINT_URL"] = os.environ["R3_FUNCTION_ENDPOINT"]

from handler_lib import defer

QUEUE_URL = os.environ["TEST_QUEUE_URL"]


@defer
def handler(event, context):
    for n in range(event.get("sqs", 0)):
        defer.sqs(QUEUE_URL, {"tag": event["tag"], "n": n})
    return {"pid": os.getpid()}
'''


def tmpfs_rie(rie_binary: Path, tmp_path: Path, journal: Path) -> Path:
    """RIE behind a launcher that first mounts a nearly full tmpfs on the journal directory
    (in RIE's own mount namespace, so it lives as long as RIE does, across resets)."""
    journal.mkdir()
    wrapper = tmp_path / "rie-with-full-tmp"
    wrapper.write_text(f"""#!/bin/bash
mount -t tmpfs -o size={TMPFS_BYTES} tmpfs {journal} || exit 97
head -c {TMPFS_BYTES - ROOM_LEFT} /dev/zero > {journal}/filler || exit 98
exec {rie_binary} "$@"
""")
    wrapper.chmod(0o755)
    return wrapper


def extension_pid(socket_path: str) -> int:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if b"bootstrap.py" in cmdline and f"DEFER_SOCKET={socket_path}".encode() in environ:
            return int(pid)
    raise AssertionError("defer-runner process not found")


def numbers(bodies, tag):
    return sorted(b["n"] for b in bodies if isinstance(b, dict) and b.get("tag") == tag)


def test_items_the_full_journal_could_not_take_survive_a_kill_of_the_extension(
        rie_binary, built_layer, aws_resources, fault_proxy, moto_endpoint, tmp_path):
    res = aws_resources()
    function_dir = write_files(tmp_path / "function", {"app.py": APP})
    journal = tmp_path / "journal"
    sock = str(tmp_path / "defer.sock")
    env = {**res.env(), "AWS_ENDPOINT_URL": fault_proxy.endpoint_url, "R3_FUNCTION_ENDPOINT": moto_endpoint,
           "DEFER_SOCKET": sock, "DEFER_JOURNAL_DIR": str(journal)}
    with Rie(built_layer, function_dir, "app.handler", env=env, timeout_s=10, log_dir=tmp_path / "rie",
             rie_binary=tmpfs_rie(rie_binary, tmp_path, journal)) as rie:
        status, _, _ = rie.invoke({"tag": "warm"})  # the extension starts on the first invoke
        assert status == 200, rie.logs()
        # GIVEN an endpoint that fails every call of the extension's (nothing it sends can land)
        fault_proxy.error("SendMessageBatch", "ServiceUnavailable", 503)
        result: dict = {}
        invoke = threading.Thread(target=lambda: result.setdefault("r", rie.invoke({"tag": "full", "sqs": ITEMS})))
        invoke.start()
        # WHEN the extension is killed once the handler has returned (the ack was given, and the
        # function delivered what the ack left to it) and the extension's drain is under way
        wait_until(lambda: rie.logs().count("INVOKE RTDONE") >= 2 and fault_proxy.count("SendMessageBatch") >= 1,
                   10, message=lambda: rie.logs()[-3000:])
        os.kill(extension_pid(sock), signal.SIGKILL)
        invoke.join(20)
        assert not invoke.is_alive()
        fault_proxy.clear()
        status, _, _ = rie.invoke({"tag": "next"})  # RIE resets and re-inits: the journal is replayed
        assert status == 200, rie.logs()[-3000:]
        # THEN every item arrives: what the journal held from the extension after its restart,
        # the rest from the function, which the ack left them to
        got = numbers(drain_queue(res.queue_url, ITEMS, timeout=10), "full")
        logs = rie.logs()
        assert "journal append failed" in logs, logs[-3000:]  # the journal did fill up
        assert sorted(set(got)) == list(range(ITEMS)), (f"lost {sorted(set(range(ITEMS)) - set(got))}", logs[-4000:])
