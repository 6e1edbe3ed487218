"""Post-response work that forks a child which exits with sys.exit(0), as a script would."""

import os
import sys

from handler_lib import defer

LOG = "/tmp/r4-after-runs.log"


def fork_and_exit() -> None:
    pid = os.fork()
    if pid == 0:
        note("child")
        sys.exit(0)  # the child is done: it must not go on with the parent's work
    os.waitpid(pid, 0)


def note(what: str) -> None:
    with open(LOG, "a") as f:
        f.write(f"{what} {os.getpid()}\n")


@defer.every(3600, run_first=True)
def forking_hook() -> None:
    if os.environ.get("R4_FORKING_HOOK"):
        fork_and_exit()


@defer
def handler(event, context):
    note("handler")
    if event.get("after"):
        defer.after(fork_and_exit)
        defer.after(note, "second")
    defer.sqs(os.environ["TEST_QUEUE_URL"], {"n": event["n"]})
    return {"ok": True}
