"""The inline driver: the delivery engine run in the function's own process.

Used when no extension holds the work (``DEFER_MODE=inline``, no defer-runner listening,
the extension over its memory bound) and for what the extension did not confirm at the end
of an invoke. The same engine as the extension's (sinks, batching, retries, dead letters),
run synchronously and without a journal: work is late (the response waits for it) but not
lost. Only the dead letters it holds for a later invoke's end are written down, for the
extension (``_waiting_letters``). The engine is an ordinary subpackage of this library, so
nothing is looked up on ``sys.path`` and no folder of the layer's extension is ever added
to the function's.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable, Iterable, List, Optional, Set, Tuple

from . import config as cfg
from . import wire
from .engine.clients import ClientFactory
from .engine.dead_letters import describe_letter, is_dead_letter
from .engine.drain import DrainReport, Drainer
from .engine.outcome import TRANSPORT as TRANSPORT_CODE
from .engine.pending import Entry, PendingQueue
from .engine.sinks import make_sinks
from .engine.tasks import TaskRunner
from ._waiting_letters import WaitingLetters

log = logging.getLogger("defer_runner.inline")
LETTERS_S = 1.0  # for the dead letters of what the budget left undelivered
WRITE_PAST_STOP_S = 0.2  # of the deadline margin (at most two thirds), for writing down the letters left waiting
_drainer: Optional[Drainer] = None
_draining = 0  # drains in progress: work deferred by a task they run joins them
_waiting: Set[str] = set()  # letters held for a later invoke's end, each said once (_hold_letters)
_letters_file: Optional[WaitingLetters] = None  # where an extension would take them over


def make_drainer(config: cfg.Config) -> Drainer:
    """A Drainer without a journal: the extension's delivery path, in this process."""
    # Every task item here was made by a ``.defer()`` of a module this process imported.
    return Drainer(PendingQueue(), make_sinks(ClientFactory(config), config), TaskRunner(trust_loaded=True), config)


def deliver_inline(items: List[wire.WorkItem], clock: Optional[Callable[[], int]] = None) -> List[str]:
    """Deliver ``items`` here, now; ``clock`` is the invoke's ``get_remaining_time_in_millis``.
    Returns the ids of those the budget ran out on."""
    budget, invoke_left = limits_s(clock)
    now = time.monotonic()
    return deliver(items, now + budget, None if invoke_left is None else now + invoke_left).left_ids


def deliver(items: Iterable[wire.WorkItem], stop_at: float, hard_stop: Optional[float] = None) -> DrainReport:
    """Deliver ``items`` until ``stop_at`` (monotonic); what is left is given up, each with an
    ERROR line naming its target and its last error, and dead-lettered when a DLQ is set: the
    letters get up to ``LETTERS_S`` more, never past ``hard_stop`` (the invoke's end). Letters
    that still did not go stay for a later invoke's end (``deliver_leftovers``), within a
    memory bound (``_hold_letters``): a letter is not given up for want of time while
    this process lives on."""
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
    try:
        report = _drainer.drain(stop_at, give_up_unreachable=outside_lambda())
    finally:
        _draining -= 1
    report.left_ids = [e.item.id for e in _drainer.queue.snapshot() if not is_dead_letter(e.item)]
    # In flight too: the call may still land (a duplicate, at least once), but nothing waits
    # for it once the handler has returned, so it must not go unaccounted for.
    letters = _drainer.give_up_rest("Defer.InlineBudgetExceeded", _over_budget, spare_letters=True)
    later = report
    if letters:
        # Sent now, not with the next inline delivery, which may never come; a letter that
        # still fails waits for that one (with an ERROR line: _hold_letters).
        until = time.monotonic() + LETTERS_S
        later = _drainer.drain(until if hard_stop is None else min(until, hard_stop),
                               give_up_unreachable=outside_lambda())
    # Written down for the extension within part of the deadline margin: a large flood's
    # letters are built after the budget ran out, and the invoke must still end in time.
    past_stop = min(WRITE_PAST_STOP_S, _drainer.config.deadline_margin_ms / 1500)
    write_until = None if hard_stop is None else hard_stop + past_stop
    _hold_letters(_drainer, cfg.default_max_queued_mb(os.environ) << 20, write_until)
    if later is not report:  # after _hold_letters, whose give-ups count in ``later``
        report.merge(later)
    return report


def _hold_letters(drainer: Drainer, max_bytes: int, write_until: Optional[float] = None) -> None:
    """Letters that wait for a later invoke's end live in this process's memory, and in its
    file for the extension where there is one (``_waiting_letters``): the extension sends them
    if the environment ends first. A letter the file does not hold says at ERROR, once, that
    it is lost if the environment ends first. Past ``max_bytes`` (a quarter of the function's
    memory, at most 64 MiB: the extension's default bound, not DEFER_MAX_QUEUED_MB, which is
    the extension's own) the oldest are given up, each with its ERROR line."""
    global _waiting
    held = [e for e in drainer.queue.snapshot() if is_dead_letter(e.item)]
    total = sum(e.size for e in held)
    kept: List[Entry] = []
    for entry in held:
        if total > max_bytes and not entry.in_flight:
            total -= entry.size
            drainer.lose(entry, "Defer.InlineBudgetExceeded",
                         "not delivered within the inline budget, and the letters waiting in the function for "
                         "a later invoke's end are over a quarter of its memory")
            drainer.queue.finish(entry.item.id)
        else:
            kept.append(entry)
    letters_file = _letters_file_for(drainer.config)
    if letters_file is not None:
        try:
            found = letters_file.keep(kept, write_until)
            for item in found:  # left by an earlier process with this pid
                queued, key, _ = drainer.queue.receive(item)
                adopted = drainer.queue.get(key)
                if queued and adopted is not None:
                    kept.append(adopted)
            if found:
                letters_file.keep(kept, write_until)
        except Exception:  # noqa: BLE001 - never into the handler: the letters wait in memory, as before
            log.exception("the waiting dead letters could not be written down for the extension")
    for entry in kept:
        if entry.item.id not in _waiting:
            fields = describe_letter(entry.item, drainer.config.log_payloads)
            if letters_file is not None and letters_file.holds(entry.item.id):
                log.warning("the dead letter of %s waits for a later invoke's end (not sent within this one); "
                            "written down for the extension, which sends it if the environment ends first",
                            fields.get("item_id"), extra={**fields, "path": letters_file.directory})
            else:
                log.error("the dead letter of %s waits in this process for a later invoke's end (not sent within "
                          "this one); it is lost if the environment ends first", fields.get("item_id"), extra=fields)
    _waiting = {e.item.id for e in kept}


def _letters_file_for(config: cfg.Config) -> Optional[WaitingLetters]:
    """The file of waiting letters, where an extension runs beside this function to take it
    over (in Lambda, its socket present, not DEFER_MODE=inline); else None."""
    global _letters_file
    if _letters_file is None and (config.mode != "inline" and os.environ.get("AWS_LAMBDA_RUNTIME_API")
                                  and os.path.exists(config.socket_path)):
        _letters_file = WaitingLetters(config.journal_dir)
    return _letters_file


#: An invoke's end gives what an earlier delivery left at most this long: a letter that still
#: fails (AWS down) must not hold every later response for the whole inline budget.
LEFTOVER_S = 0.25


def deliver_leftovers(clock: Optional[Callable[[], int]] = None) -> List[str]:
    """What an earlier delivery left in the engine, within LEFTOVER_S (and the invoke)."""
    budget, invoke_left = limits_s(clock)
    now = time.monotonic()
    stop = now + min(budget, LEFTOVER_S, invoke_left if invoke_left is not None else LEFTOVER_S)
    return deliver([], stop, stop).left_ids


def pending() -> bool:
    """Whether the engine holds work an earlier delivery could not finish (letters, as a rule)."""
    return _drainer is not None and not _draining and bool(_drainer.queue.snapshot())


def forget_engine() -> None:
    """Drop the engine unless a drain runs (tests that change the environment: its sinks hold
    the configuration they were made with, the claim check's bucket, the endpoint, the DLQ)."""
    global _drainer, _letters_file
    if not _draining:
        _drainer = None
        if _letters_file is not None:
            _letters_file.close()  # what it holds stays in it, for the extension
            _letters_file = None


def _after_fork_in_child() -> None:
    """A forked child builds its own engine: the parent's send pool has its threads in the
    parent only (a batch handed to it here would wait for a worker that does not exist, to
    the end of the budget), and its clients' connections are the parent's. A drain the
    parent ran at the fork does not run here."""
    global _draining, _waiting, _letters_file
    _draining = 0
    _waiting = set()
    if _letters_file is not None:
        _letters_file.close_in_child()  # the parent's letters, in the parent's file
        _letters_file = None
    forget_engine()


os.register_at_fork(after_in_child=_after_fork_in_child)


def outside_lambda() -> bool:
    """No Runtime API: a script, a test or a REPL calling the handler (Lambda, RIE and the
    sandbox all set it). There, an endpoint that cannot be reached is not waited for."""
    return not os.environ.get("AWS_LAMBDA_RUNTIME_API")


LOCAL_HINT = ("this process runs outside Lambda and the endpoint could not be reached, so it did not wait for it: "
              "in tests, call the handler inside handler_lib.testing.capture(); to deliver for real, point "
              "AWS_ENDPOINT_URL at a local endpoint (moto server) or run with network and credentials")
#: what boto3 could not find before any call was made: said as such, not as an unreachable endpoint
_LOCAL_CAUSES = (
    ("NoRegionError", "no AWS region is set (boto3 reads AWS_DEFAULT_REGION, not AWS_REGION; Lambda sets both)"),
    ("NoCredentialsError", "no AWS credentials were found"),
)


def _local_hint(last: str) -> str:
    for error, cause in _LOCAL_CAUSES:
        if error in last:
            return LOCAL_HINT.replace("the endpoint could not be reached", cause)
    return LOCAL_HINT


def _over_budget(entry: Entry, last: str) -> str:
    """The reason on the item's one ERROR line (the engine's give-up line) and its letter."""
    if outside_lambda() and last.startswith(TRANSPORT_CODE) and not entry.in_flight:
        return f"not delivered: {_local_hint(last)}; last error: {last}"
    return (f"not delivered within the inline budget{' (a call was still in flight)' if entry.in_flight else ''}; "
            f"last error: {last or 'none'}")


def limits_s(clock: Optional[Callable[[], int]] = None) -> Tuple[float, Optional[float]]:
    """(DEFER_INLINE_BUDGET_MS cut to the invoke's time left, the invoke's time left), both
    less the deadline margin; the second is None without a context clock."""
    settings = cfg.load()
    remaining = _remaining_ms(clock)
    if remaining is None:
        return max(0, settings.inline_budget_ms) / 1000, None
    margin_ms = cfg.delivery_margin_ms(settings.deadline_margin_ms, getattr(clock, "window_ms", None))
    left = max(0, remaining - margin_ms) / 1000
    return min(max(0, settings.inline_budget_ms) / 1000, left), left


def _remaining_ms(clock: Optional[Callable[[], int]]) -> Optional[int]:
    if clock is None:
        return None
    try:
        return int(clock())
    except (TypeError, ValueError):
        return None
