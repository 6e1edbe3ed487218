"""``@defer.task``: a module-level function the extension may run on the function's behalf.

The extension runs only objects carrying the ``__defer_task__`` marker that this decorator
sets, found by ``module:qualname``; any other name is never run.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Generic, Optional, Tuple, TypeVar

try:  # Python 3.10+: ParamSpec checks .defer(...) against the function's signature.
    from typing import ParamSpec
except ImportError:  # pragma: no cover
    from typing_extensions import ParamSpec  # type: ignore[assignment]

from . import _items
from ._dispatch import DISPATCHER
from .engine.task_marker import TaskOptions, task_options

P = ParamSpec("P")
R = TypeVar("R")

MAX_TASK_ATTEMPTS = 100
MAX_TASK_TIMEOUT_S = 900.0


class Task(Generic[P, R]):
    """A deferrable function. Calling it runs it now; ``.defer(...)`` hands it to the extension."""

    def __init__(self, fn: Callable[P, R], options: TaskOptions) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.__defer_task__ = options

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def defer(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Queue a run of this task after the response; return the item id.

        Arguments the function cannot take raise ``TypeError`` here, as calling it would.
        """
        opts = self.__defer_task__
        if opts.pass_item_id:
            if "defer_id" in kwargs:
                raise TypeError(f"{opts.name}: defer_id is passed by the runner (pass_item_id=True), not by .defer()")
            check_call(self.fn, args, {**kwargs, "defer_id": ""})
        else:
            check_call(self.fn, args, kwargs)
        item = _items.task_item(DISPATCHER.request_id, opts.name, args, kwargs,
                                max_attempts=opts.max_attempts, timeout_s=opts.timeout_s)
        if opts.queue is not None:  # another function runs it: one SQS message per call
            return DISPATCHER.submit(_items.queued_task_item(opts.queue, item))
        return DISPATCHER.submit(item)

    def __repr__(self) -> str:
        return f"<deferrable task {self.__defer_task__.name}>"


_CO_VARARGS = 0x04
_CO_VARKEYWORDS = 0x08


def check_call(fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
    """Raise ``TypeError`` if ``fn(*args, **kwargs)`` would not bind.

    A plain function is checked from its code object: ``inspect`` costs ~9 ms to import,
    too much for the first ``.defer()`` of a cold start. Anything else (a wrapped function,
    a callable object) is checked with ``inspect.signature``, imported then.
    """
    code = getattr(fn, "__code__", None)
    if code is None or hasattr(fn, "__wrapped__") or hasattr(fn, "__signature__"):
        import inspect

        try:
            inspect.signature(fn).bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{getattr(fn, '__qualname__', fn)}(): {exc}") from None
        return
    name = f"{fn.__qualname__}()"
    n_positional, n_posonly = code.co_argcount, code.co_posonlyargcount
    positional = code.co_varnames[:n_positional]
    kwonly = code.co_varnames[n_positional:n_positional + code.co_kwonlyargcount]
    takes_varkw = bool(code.co_flags & _CO_VARKEYWORDS)
    if len(args) > n_positional and not code.co_flags & _CO_VARARGS:
        raise TypeError(f"{name} takes {n_positional} positional arguments but {len(args)} were given")
    for key in kwargs:
        if key in positional[n_posonly:len(args)]:
            raise TypeError(f"{name} got multiple values for argument {key!r}")
        if not takes_varkw and (key in positional[:n_posonly]
                                or (key not in positional and key not in kwonly)):
            raise TypeError(f"{name} got an unexpected keyword argument {key!r}")
    first_default = n_positional - len(fn.__defaults__ or ())
    kw_defaults = fn.__kwdefaults__ or {}
    missing = [arg for index, arg in enumerate(positional)
               if len(args) <= index < first_default and (index < n_posonly or arg not in kwargs)]
    missing += [arg for arg in kwonly if arg not in kwargs and arg not in kw_defaults]
    if missing:
        raise TypeError(f"{name} missing required arguments: {', '.join(map(repr, missing))}")


def make_task(fn: Callable[P, R], *, max_attempts: Optional[int] = None,
              timeout: Optional[float] = None, pass_item_id: bool = False,
              queue: Optional[str] = None) -> Task[P, R]:
    if not callable(fn):
        raise TypeError(f"@defer.task decorates a function, not {type(fn).__name__}")
    qualname = getattr(fn, "__qualname__", "")
    module = getattr(fn, "__module__", None)
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        raise ValueError(f"@defer.task needs a module-level function the extension can import; "
                         f"{module}.{qualname} is not one")
    if max_attempts is not None and (isinstance(max_attempts, bool) or not isinstance(max_attempts, int)
                                     or not 1 <= max_attempts <= MAX_TASK_ATTEMPTS):
        raise ValueError(f"max_attempts must be an int in 1..{MAX_TASK_ATTEMPTS}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not 0 < timeout <= MAX_TASK_TIMEOUT_S):
        raise ValueError(f"timeout must be seconds in (0, {MAX_TASK_TIMEOUT_S:g}]")
    if queue is not None:
        from ._task_queue import check_queue_url

        check_queue_url(queue)
    options = TaskOptions(f"{module}:{qualname}", max_attempts,
                          float(timeout) if timeout is not None else None, pass_item_id, queue)
    return Task(fn, options)


__all__ = ["P", "R", "Task", "TaskOptions", "check_call", "make_task", "task_options"]
