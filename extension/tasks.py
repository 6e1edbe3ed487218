"""Find and run ``@defer.task`` functions in the extension process.

A task is named ``module:qualname`` and imported from the function's code: the task root and
the function's ``sys.path`` (sent in the channel's hello) are appended after the extension's
own paths. Only objects carrying the ``@defer.task`` marker run; any other name is refused
as a permanent failure, so a frame can never make the extension call arbitrary code.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable, Iterable, Optional

from handler_lib import wire
from handler_lib._tasks import task_options

from .outcome import TASK_FAILED, TASK_NOT_FOUND, Outcome


class TaskNotFound(LookupError):
    """The name does not resolve to a ``@defer.task`` function."""


class TaskRunner:
    def __init__(self, task_root: Optional[str] = None) -> None:
        self.add_paths([task_root or os.environ.get("LAMBDA_TASK_ROOT") or "/var/task"])

    def add_paths(self, paths: Iterable[str]) -> None:
        """Append the function's import paths (never ahead of the extension's own)."""
        for path in paths:
            if path and path not in sys.path:
                sys.path.append(path)

    def resolve(self, name: str) -> Callable[..., Any]:
        module_name, sep, qualname = name.partition(":")
        if not sep or not module_name or not qualname:
            raise TaskNotFound(f"{name!r} is not of the form module:qualname")
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise TaskNotFound(f"cannot import {module_name}: {exc}") from exc
        for part in qualname.split("."):
            target = getattr(target, part, None)
            if target is None:
                raise TaskNotFound(f"{name} does not exist")
        options = task_options(target)
        if options is None or options.name != name:
            raise TaskNotFound(f"{name} is not a @defer.task function; refusing to run it")
        return target

    def run(self, item: wire.TaskItem) -> Outcome:
        try:
            task = self.resolve(item.function)
        except TaskNotFound as exc:
            return Outcome.failure(item.id, TASK_NOT_FOUND, str(exc), sender_fault=True)
        kwargs = dict(item.kwargs)
        if task.__defer_task__.pass_item_id:  # type: ignore[attr-defined]
            kwargs["defer_id"] = item.id
        try:
            task.fn(*item.args, **kwargs)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - a failing task is an outcome, never a crash
            return Outcome.failure(item.id, TASK_FAILED, f"{type(exc).__name__}: {exc}")
        return Outcome.success(item.id)
