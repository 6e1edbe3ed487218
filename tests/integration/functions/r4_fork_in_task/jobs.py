"""Queued tasks for the worker: one forks a child that ends with sys.exit(0), as a script would."""

import os
import sys

from handler_lib import defer

QUEUE = os.environ["TASK_QUEUE_URL"]
LOG = "/tmp/r4-task-runs.log"


def note(what: str) -> None:
    with open(LOG, "a") as f:
        f.write(f"{what} {os.getpid()}\n")


@defer.task(queue=QUEUE)
def forks(n: int) -> None:
    note(f"forks-{n}")
    pid = os.fork()
    if pid == 0:
        sys.exit(0)  # the child is done
    os.waitpid(pid, 0)


@defer.task(queue=QUEUE)
def marker(n: int) -> None:
    note(f"marker-{n}")
