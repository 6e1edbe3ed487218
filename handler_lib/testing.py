"""Capture mode for users' unit tests: record what a handler defers instead of sending it.

Example
-------
>>> from handler_lib.testing import capture
>>> with capture() as deferred:
...     handler(event, context)
>>> assert deferred.sqs[0].body == '{"order_id":"o-1"}'
>>> assert deferred.invokes[0].function == "billing"   # also .executions, .callbacks
>>> deferred.run_tasks()        # run the captured @defer.task calls here, now
>>> deferred.run_after()        # and the captured defer.after callables
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional, Tuple

from . import _items, wire
from ._dispatch import DISPATCHER
from ._invoke import AfterCall
from ._task_queue import task_of
from ._test_events import alb_event, api_gateway_rest_event, function_url_event, http_api_event, sqs_event
from ._tasks import task_options

__all__ = ["Captured", "capture", "api_gateway_rest_event", "http_api_event", "function_url_event",
           "alb_event", "sqs_event", "periodic_hooks", "run_hooks"]


class Captured(List[wire.WorkItem]):
    """The items deferred inside a ``capture()`` block, in order, as the extension would decode
    them (through the wire codec: tuples become lists, IntEnum an int), and the ``defer.after``
    calls."""

    def __init__(self) -> None:
        super().__init__()
        self.after: List[AfterCall] = []

    def append(self, item: wire.WorkItem) -> None:
        super().append(_items.round_trip(item))

    def run_after(self) -> List[Any]:
        """Run the captured ``defer.after`` callables here, now, in order; return their results.

        What they defer is captured too, and what they add with ``defer.after`` runs as well.
        """
        results = []
        while self.after:
            fn, args, kwargs = self.after.pop(0)
            results.append(fn(*args, **kwargs))
        return results

    @property
    def sqs(self) -> List[wire.SqsItem]:
        return [i for i in self if isinstance(i, wire.SqsItem)]

    @property
    def sns(self) -> List[wire.SnsItem]:
        return [i for i in self if isinstance(i, wire.SnsItem)]

    @property
    def events(self) -> List[wire.EventItem]:
        return [i for i in self if isinstance(i, wire.EventItem)]

    @property
    def tasks(self) -> List[wire.TaskItem]:
        return [i for i in self if isinstance(i, wire.TaskItem)]

    @property
    def invokes(self) -> List[wire.InvokeItem]:
        """``defer.invoke`` calls: function, payload (JSON text), qualifier, durable_name, tenant_id."""
        return [i for i in self if isinstance(i, wire.InvokeItem)]

    @property
    def executions(self) -> List[wire.SfnItem]:
        """``defer.sfn`` calls: state_machine_arn, input (JSON text), name."""
        return [i for i in self if isinstance(i, wire.SfnItem)]

    @property
    def callbacks(self) -> List[wire.CallbackItem]:
        """``defer.callback`` calls: callback_id, and result (JSON text) or error."""
        return [i for i in self if isinstance(i, wire.CallbackItem)]

    @property
    def queued_tasks(self) -> List[wire.TaskItem]:
        """``@defer.task(queue=...)`` calls, read back from their SQS messages (in ``.sqs`` too)."""
        return [task for task in map(_queued_task, self) if task is not None]

    def run_tasks(self) -> List[Any]:
        """Run every captured task in this process, in order (queued ones too); return their results."""
        results = []
        for item in [i if isinstance(i, wire.TaskItem) else _queued_task(i) for i in self]:
            if item is None:
                continue
            module_name, _, qualname = item.function.partition(":")
            target: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
            options = task_options(target)
            if options is None:
                raise LookupError(f"{item.function} is not a @defer.task")
            kwargs = dict(item.kwargs)
            if options.pass_item_id:
                kwargs["defer_id"] = item.id
            results.append(target.fn(*item.args, **kwargs))
        return results


def periodic_hooks() -> List[str]:
    """The ``@defer.every`` hooks registered in this process, as ``module:qualname``."""
    from . import _hooks

    return [hook.name for hook in _hooks.registered()]


def run_hooks() -> List[Any]:
    """Run every ``@defer.every`` hook here, now, in the order they were registered; return
    their results. A hook's exception propagates (in production it is logged and counted)."""
    from . import _hooks

    return [hook.fn() for hook in _hooks.registered()]


def _queued_task(item: wire.WorkItem) -> Optional[wire.TaskItem]:
    if not isinstance(item, wire.SqsItem):
        return None
    try:
        return task_of(item.body)
    except ValueError:  # another message, not a queued task
        return None


@contextmanager
def capture() -> Iterator[Captured]:
    """Record deferred items (validated exactly as in production) instead of sending them."""
    captured = Captured()
    previous, previous_after = DISPATCHER.capture, DISPATCHER.capture_after
    DISPATCHER.capture, DISPATCHER.capture_after = captured, captured.after
    try:
        yield captured
    finally:
        DISPATCHER.capture, DISPATCHER.capture_after = previous, previous_after
