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
LETTERS_S = 1.0  # for the dead letters of what the budget left undelivered
_drainer: Optional[Drainer] = None
_draining = 0  # drains in progress: work deferred by a task they run joins them

def make_drainer(config: cfg.Config) -> Drainer:
    """A Drainer without a journal: the extension's delivery path, in this process."""
    return Drainer(PendingQueue(), make_sinks(ClientFactory(config)), TaskRunner(trust_loaded=True), config)


def deliver(items: Iterable[wire.WorkItem], stop_at: float, hard_stop: Optional[float] = None) -> DrainReport:
    """Deliver ``items`` until ``stop_at`` (monotonic); what is left is given up, each with an
    ERROR line naming its target and its last error, and dead-lettered when a DLQ is set: the
    letters get up to ``LETTERS_S`` more, never past ``hard_stop`` (the invoke's end)."""
    global _drainer, _draining
    if _drainer is None:
        _drainer = make_drainer(cfg.load())
    for item in items:
        _drainer.queue.add(item)
    if _draining:
        # A task of the running drain deferred more (a change record at its commit, say): the
        # drain delivers it before it ends. A drain of its own here would wait for that task,
        # which is waiting for it.
        return DrainReport()
    _draining += 1
    letters_before = _drainer.letters_queued
    try:
        report = _drainer.drain(stop_at)
    finally:
        _draining -= 1
    for entry in _drainer.queue.snapshot():
        # In flight too: the call may still land (a duplicate, at least once), but nothing
        # waits for it once the handler has returned, so it must not go unaccounted for.
        item = entry.item
        last = f"{entry.last_code}: {entry.last_message}" if entry.last_code else "none"
        reason = (f"not delivered within the inline budget{' (a call was still in flight)' if entry.in_flight else ''}; "
                  f"last error: {last}")
        log.error("lambda-defer inline: gave up on %s %s to %s after %d attempts: %s",
                  item.kind, item.id, item.target, entry.attempts, reason)
        _drainer.give_up(entry, "Defer.InlineBudgetExceeded", reason)
    if _drainer.letters_queued > letters_before:
        # Sent now, not with the next inline delivery, which may never come; a letter that
        # still fails waits for that one (its item already has its ERROR line).
        until = time.monotonic() + LETTERS_S
        report.merge(_drainer.drain(until if hard_stop is None else min(until, hard_stop)))
    return report
