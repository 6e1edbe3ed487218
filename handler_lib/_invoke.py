"""One invoke as the function sees it, and which invoke the calling code works for.

A leaf: the dispatcher, the post-response runner and the ASGI adapter all hold invokes.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import wire

#: One ``defer.after`` call: the callable, its positional and its keyword arguments.
AfterCall = Tuple[Callable[..., Any], Tuple[Any, ...], Dict[str, Any]]


class Invoke:
    """One invoke as the function sees it: what it sent, what goes inline, what runs after it."""

    __slots__ = ("request_id", "clock", "give_up_at", "unacked", "inline", "inline_at", "inline_why",
                 "after", "after_run", "after_failed", "ended")

    def __init__(self, request_id: str, clock: Optional[Callable[[], int]] = None,
                 give_up_at: Optional[float] = None) -> None:
        self.request_id = request_id
        # the context's get_remaining_time_in_millis, when it has one
        self.clock = None if clock is None else InvokeClock(clock)
        self.give_up_at = give_up_at  # waits on the extension end by then (monotonic): deadline less margin
        self.ended = False  # its items were settled: what comes later belongs to no invoke
        self.unacked: List[wire.WorkItem] = []  # sent to the extension, not confirmed yet
        self.inline: List[wire.WorkItem] = []  # delivered by the function when the invoke ends
        self.inline_at: List[int] = []  # for each of those, how many items had been sent before it
        self.inline_why: List[str] = []  # why they went inline, said once they were delivered
        self.after: List[AfterCall] = []  # defer.after, in order
        self.after_run = 0
        self.after_failed = 0


class InvokeClock:
    """The context's ``get_remaining_time_in_millis``, and what it said as the invoke began
    (``window_ms``: the function's timeout, which Lambda tells the function no other way)."""

    __slots__ = ("read", "window_ms")

    def __init__(self, read: Callable[[], int]) -> None:
        self.read = read
        try:
            self.window_ms: Optional[int] = int(read())
        except Exception:  # noqa: BLE001 - a context without a usable clock
            self.window_ms = None

    def __call__(self) -> int:
        return self.read()


# The invoke an asyncio task (and the worker threads it starts) works for: ``defer.asgi``
# sets it at the start of each app call, so two calls sharing the app's loop never mix.
TASK_INVOKE: "ContextVar[Optional[Invoke]]" = ContextVar("lambda_defer_invoke", default=None)
