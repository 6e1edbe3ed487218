"""Deliver items in the calling process: the fallback when no extension runs.

The same drain as the extension's (same sinks, batching, retries, dead letters), run
synchronously, without a journal: work is late (the response waits for it) but not lost.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable, Optional

from handler_lib import config as cfg
from handler_lib import wire

from .drain import DrainReport, Drainer
from .clients import ClientFactory
from .pending import PendingQueue
from .sinks import make_sinks
from .tasks import TaskRunner

log = logging.getLogger("defer_runner.inline")
_drainer: Optional[Drainer] = None

DEFAULT_BUDGET_S = 30.0


def make_drainer(config: cfg.Config) -> Drainer:
    """A Drainer without a journal: the extension's delivery path, in this process."""
    return Drainer(PendingQueue(), make_sinks(ClientFactory(config)), TaskRunner(), config)


def deliver(items: Iterable[wire.WorkItem], budget_s: float = DEFAULT_BUDGET_S) -> DrainReport:
    global _drainer
    if _drainer is None:
        _drainer = make_drainer(cfg.load())
    for item in items:
        _drainer.queue.add(item)
    report = _drainer.drain(time.monotonic() + budget_s)
    for entry in _drainer.queue.snapshot():
        if not entry.in_flight:
            _drainer.give_up(entry, "Defer.InlineBudgetExceeded", f"not delivered within {budget_s:g}s inline")
    return report
