"""Tasks of the task battery."""

from handler_lib import defer


def _check(n):
    raise ValueError(f"job {n} refused")


@defer.task(max_attempts=2)
def fails(n):
    _check(n)
