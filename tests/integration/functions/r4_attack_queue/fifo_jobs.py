"""Queued tasks on a FIFO queue, for the round-4 worker attacks."""

import os

from handler_lib import defer

FIFO = os.environ["TASK_FIFO_QUEUE_URL"]
_runs: dict = {}  # per item id, in this worker environment


def _run(name: str, defer_id: str, fail_first: int) -> None:
    _runs[defer_id] = _runs.get(defer_id, 0) + 1
    print(f"{name} run {_runs[defer_id]}", flush=True)
    if _runs[defer_id] <= fail_first:
        raise RuntimeError(f"{name} not yet (run {_runs[defer_id]})")


@defer.task(queue=FIFO, max_attempts=5, pass_item_id=True)
def blocker(fail_first: int, *, defer_id: str) -> None:
    _run("blocker", defer_id, fail_first)


@defer.task(queue=FIFO, max_attempts=2, pass_item_id=True)
def flaky(fail_first: int, *, defer_id: str) -> None:
    _run("flaky", defer_id, fail_first)
