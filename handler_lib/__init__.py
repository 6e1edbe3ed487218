"""lambda-defer's function-side library: hand side effects to the defer-runner extension.

Imports only the standard library and msgpack: this module loads on every cold start.
Names load on first use (PEP 562), so the extension can import ``handler_lib.config`` and
``handler_lib.wire`` before it registers without paying for the rest. ``from handler_lib
import defer`` loads this module and ``handler_lib._api`` only (not even ``typing``: the
runtime has not loaded it, and it costs ~2.5 ms of a cold start; issue 22); what the
handler uses loads with its first use (tests/unit/test_import_set.py holds the list).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy reads the name as True
if TYPE_CHECKING:
    from typing import Any

    from ._api import Defer, defer
    from ._dispatch import ExtensionUnavailableError
    from ._tasks import Task, TaskOptions
    from .config import ConfigError

__all__ = ["ConfigError", "Defer", "ExtensionUnavailableError", "Task", "TaskOptions", "defer"]


def _say_if_shadowing_the_layer() -> None:
    """A copy bundled in the function's zip (lambda-defer in its requirements) comes first on
    the path and replaces the layer's, which the extension was built with: say so once, at import."""
    import os
    import sys

    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    here = os.path.dirname(os.path.abspath(__file__))
    if not task_root or os.path.commonpath([here, os.path.abspath(task_root)]) != os.path.abspath(task_root):
        return
    for entry in sys.path:  # the layer's python/: /opt/python on Lambda, the layer's host path without a namespace
        other = os.path.join(os.path.abspath(entry or "."), "handler_lib")
        if other != here and os.path.isfile(os.path.join(other, "__init__.py")):
            print(f"lambda-defer: handler_lib is imported from {here}, which shadows the layer's "
                  f"{other}: do not bundle lambda-defer with the function (remove it from its "
                  "requirements); the layer brings it", file=sys.stderr, flush=True)
            return


_say_if_shadowing_the_layer()

_HOMES = {"Defer": "._api", "defer": "._api", "ExtensionUnavailableError": "._dispatch",
          "Task": "._tasks", "TaskOptions": "._tasks", "ConfigError": ".config"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'handler_lib' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
