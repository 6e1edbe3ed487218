"""The mark ``@defer.task`` sets on a function, and the one test the task runner trusts.

Both sides use it: the library sets it, the engine runs only objects that carry it. It
imports nothing, so the function's cold start pays nothing for it.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional


class TaskOptions(NamedTuple):
    name: str  # "module:qualname", how the runner finds it
    max_attempts: Optional[int] = None  # None: DEFER_MAX_ATTEMPTS
    timeout_s: Optional[float] = None  # None: bounded only by the invoke's deadline
    pass_item_id: bool = False  # call with defer_id=<item id>, the idempotency key
    queue: Optional[str] = None  # an SQS queue URL: calls go there, for handler_lib.worker to run


def task_options(obj: Any) -> Optional[TaskOptions]:
    """The marker of a ``@defer.task`` object, or None for anything else."""
    options = getattr(obj, "__defer_task__", None)
    return options if isinstance(options, TaskOptions) else None
