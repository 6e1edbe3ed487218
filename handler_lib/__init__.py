"""lambda-defer's function-side library: hand side effects to the defer-runner extension.

Imports only the standard library and msgpack: this module loads on every cold start.
"""

from ._api import Defer, defer
from ._dispatch import ExtensionUnavailableError
from ._tasks import Task, TaskOptions
from .config import ConfigError

__all__ = ["ConfigError", "Defer", "ExtensionUnavailableError", "Task", "TaskOptions", "defer"]
