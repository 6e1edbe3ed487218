"""Queued tasks: the producer defers them, the worker function (handler_lib.worker.handler over
this same folder) runs them."""

import os

from handler_lib import defer

QUEUE = os.environ["TASK_QUEUE_URL"]
_runs: dict = {}  # per item id, in this worker environment


@defer.task(queue=QUEUE, max_attempts=5, pass_item_id=True)
def rebuild_report(day: str, fail_first: int = 0, *, defer_id: str) -> None:
    _runs[defer_id] = _runs.get(defer_id, 0) + 1
    print(f"rebuild_report {day} run {_runs[defer_id]} of {defer_id}", flush=True)
    if _runs[defer_id] <= fail_first:
        raise RuntimeError(f"report store busy (run {_runs[defer_id]})")


@defer.task(queue=QUEUE, max_attempts=2)
def always_fails(day: str) -> None:
    raise RuntimeError(f"cannot rebuild {day}")


@defer.task(queue=QUEUE, max_attempts=3)
def exits(day: str) -> None:
    raise SystemExit(f"exit while rebuilding {day}")


@defer.task(queue=os.environ["TASK_FIFO_QUEUE_URL"], pass_item_id=True)
def in_order(n: int, fail_first: int = 0, *, defer_id: str) -> None:
    _runs[defer_id] = _runs.get(defer_id, 0) + 1
    print(f"in_order {n} run {_runs[defer_id]}", flush=True)
    if _runs[defer_id] <= fail_first:
        raise RuntimeError(f"in_order {n} not yet")
