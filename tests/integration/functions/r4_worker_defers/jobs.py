import os
from handler_lib import defer

@defer.task(queue=os.environ["TASK_QUEUE_URL"])
def notify(order: str) -> None:
    defer.sqs(os.environ["OUT_QUEUE_URL"], {"order": order})
    print(f"notify {order} deferred its message", flush=True)


FIFO = os.environ.get("TASK_FIFO_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/unset.fifo")
_runs: dict = {}


@defer.task(queue=FIFO, max_attempts=3)
def stuck(n: int) -> None:
    print(f"stuck {n} run", flush=True)
    raise RuntimeError(f"stuck {n} never succeeds")


@defer.task(queue=FIFO, max_attempts=3, pass_item_id=True)
def counted(n: int, fail_first: int = 1, *, defer_id: str) -> None:
    _runs[defer_id] = _runs.get(defer_id, 0) + 1
    print(f"counted {n} run {_runs[defer_id]}", flush=True)
    if _runs[defer_id] <= fail_first:
        raise RuntimeError(f"counted {n} fails run {_runs[defer_id]}")


@defer.task(queue=os.environ["TASK_QUEUE_URL"], max_attempts=2)
def always_fails(n: int) -> None:
    print(f"always_fails {n} run", flush=True)
    raise RuntimeError(f"always_fails {n}")


@defer.task(queue=os.environ["TASK_QUEUE_URL"])
def slow(n: int) -> None:
    import time

    time.sleep(1.5)
    print(f"slow {n} done", flush=True)
