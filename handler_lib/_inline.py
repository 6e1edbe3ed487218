"""Run deferred work in the function's own process when no extension is there.

The delivery code lives with the extension; in a deployed layer it sits next to
``python/`` (in ``defer-runner/``), so it is found relative to this file and appended to
``sys.path`` (after the function's own packages, which it never shadows).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from types import ModuleType
from typing import Callable, List, Optional, Tuple

from . import wire

logger = logging.getLogger("handler_lib")


def delivery_module() -> ModuleType:
    """``extension.inline``: from the installed package, else from the layer's ``defer-runner``."""
    try:
        return importlib.import_module("extension.inline")
    except ImportError:
        layer_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for path in (os.path.join(layer_root, "defer-runner"), os.path.join(layer_root, "defer-runner", "deps")):
            if os.path.isdir(path) and path not in sys.path:
                sys.path.append(path)
        return importlib.import_module("extension.inline")


def deliver_inline(items: List[wire.WorkItem], clock: Optional[Callable[[], int]] = None) -> None:
    """Deliver ``items`` here, now; ``clock`` is the invoke's ``get_remaining_time_in_millis``."""
    budget, invoke_left = limits_s(clock)  # before the imports, which count against them
    now = time.monotonic()
    try:
        inline = delivery_module()
    except ImportError as exc:
        for item in items:
            logger.error("lambda-defer: cannot deliver %s %s inline (%s)", item.kind, item.id, exc)
        raise
    inline.deliver(items, now + budget, None if invoke_left is None else now + invoke_left)


def limits_s(clock: Optional[Callable[[], int]] = None) -> Tuple[float, Optional[float]]:
    """(DEFER_INLINE_BUDGET_MS cut to the invoke's time left, the invoke's time left), both
    less the deadline margin; the second is None without a context clock."""
    from . import config

    settings = config.load()
    remaining = _remaining_ms(clock)
    if remaining is None:
        return max(0, settings.inline_budget_ms) / 1000, None
    left = max(0, remaining - settings.deadline_margin_ms) / 1000
    return min(max(0, settings.inline_budget_ms) / 1000, left), left


def _remaining_ms(clock: Optional[Callable[[], int]]) -> Optional[int]:
    if clock is None:
        return None
    try:
        return int(clock())
    except (TypeError, ValueError):
        return None
