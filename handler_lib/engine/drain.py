"""The drain: deliver what is queued until the queue is empty or the time is up.

One path for every destination: group by target, split into batches within the service's
limits, send several batches at once, read each entry's outcome, and then per item either
finish it, schedule another attempt (exponential backoff with jitter), or dead-letter it.
Nothing waits past ``stop_at``: calls still in flight then stay in flight (their outcome is
applied whenever they end, after the next thaw at the latest) and the rest is carried over.
FIFO groups keep the order of the calls (see ``batching``). Tasks run on threads of their
own; a task's timeout counts from its start, and a task that never started is carried over.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

from .. import wire
from ..config import Config

from . import dead_letters
from .batching import admissible, fifo_group, group_by, split_batches
from .outcome import TASK_FAILED, TASK_TIMEOUT, TRANSPORT, UNKNOWN_KIND, Outcome
from .pending import Entry, PendingQueue
from .sinks import Sink
from .tasks import TaskRunner, TaskThreads

log = logging.getLogger("defer_runner.drain")

BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 5.0


def backoff_s(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter after the given number of attempts."""
    ceiling: float = min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2 ** max(0, attempts - 1)))
    return ceiling * (0.5 + rng() / 2)


@dataclass
class DrainReport:
    """What one drain did; the runner logs it and emits it as metrics."""

    received: int = 0
    delivered: int = 0  # items delivered to their targets (dead letters are not counted here)
    retried: int = 0
    dead_lettered: int = 0  # items whose dead letter was delivered to the DLQ
    given_up: int = 0  # no DLQ, the dead letter failed, or lost at SHUTDOWN: each logged at ERROR
    carried_over: int = 0
    in_flight: int = 0
    api_calls: int = 0
    tasks_hung: int = 0  # task threads still running past their timeout (abandoned)
    after_run: int = 0  # post-response callables (defer.after) the function ran, and those that raised
    after_failed: int = 0
    trace_context_skipped: int = 0  # SQS/SNS items delivered without their W3C trace context: no room
    duration_ms: float = 0.0
    delivery_latency_ms: List[float] = field(default_factory=list)
    given_up_ids: List[str] = field(default_factory=list, repr=False)
    # inline delivery: the items its budget ran out on (given up, dead-lettered or not)
    left_ids: List[str] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def merge(self, later: "DrainReport") -> None:
        """Fold a later drain of the same event in (SHUTDOWN drains twice)."""
        for name in ("delivered", "retried", "dead_lettered", "given_up", "api_calls", "trace_context_skipped",
                     "duration_ms"):
            setattr(self, name, getattr(self, name) + getattr(later, name))
        self.carried_over, self.in_flight, self.tasks_hung = later.carried_over, later.in_flight, later.tasks_hung
        self.delivery_latency_ms += later.delivery_latency_ms
        self.given_up_ids += later.given_up_ids

    def as_dict(self) -> Dict[str, float]:
        latencies = sorted(self.delivery_latency_ms)
        return {"received": self.received, "delivered": self.delivered, "retried": self.retried,
                "dead_lettered": self.dead_lettered, "given_up": self.given_up,
                "carried_over": self.carried_over, "in_flight": self.in_flight,
                "api_calls": self.api_calls, "tasks_hung": self.tasks_hung,
                "after_run": self.after_run, "after_failed": self.after_failed,
                "trace_context_skipped": self.trace_context_skipped,
                "duration_ms": round(self.duration_ms, 3),
                "delivery_latency_ms_max": round(latencies[-1], 3) if latencies else 0.0}


class Drainer:
    def __init__(self, queue: PendingQueue, sinks: Dict[str, Sink], tasks: TaskRunner,
                 config: Config, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.queue = queue
        self.sinks = sinks
        self.tasks = tasks
        self.config = config
        self.clock = clock
        self._send_pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="defer-send")
        workers = max(2, config.concurrency // 2)
        self.task_threads = TaskThreads(workers, max_hung=workers)
        self._task_deadlines: Dict[str, Tuple[float, int, int]] = {}  # id -> (deadline, attempt, thread)
        self._tracebacks: Dict[str, str] = {}  # id -> a failed task's last traceback
        self._report = DrainReport()
        self._saturated = False
        self.letters_queued = 0

    # -- the loop -----------------------------------------------------------------------
    def drain(self, stop_at: float, give_up_unreachable: bool = False,
              only: Optional[Set[str]] = None) -> DrainReport:
        """Deliver until nothing is waiting or in flight, or until ``stop_at`` (monotonic).

        ``give_up_unreachable``: stop as soon as everything left waits out a backoff because
        its endpoint could not be reached, instead of waiting for it to come back (a process
        outside Lambda with no endpoint it can reach: waiting only holds the caller).
        ``only``: deliver the items held under these keys, and nothing else; stop as soon as
        those left wait out a backoff (an extension's init: waiting holds the invoke)."""
        report = self._report = DrainReport()
        started = self.clock()
        while True:
            with self.queue.changed:
                now = self.clock()
                self._expire_tasks(now)
                if now >= stop_at:
                    break
                entries = self.queue.snapshot()
                if only is not None:
                    entries = [e for e in entries if e.item.id in only]
                allowed = admissible(entries, now, self.task_threads.free())
                ready = self.queue.take_ready(now, lambda e: e.item.id in allowed) if allowed else []
                if not ready:
                    flying = sum(1 for e in entries if e.in_flight)
                    due = min((e.not_before for e in entries if not e.in_flight and e.not_before > now),
                              default=None)
                    if flying == 0 and (due is None or due >= stop_at or only is not None):
                        break  # nothing left, or nothing can be tried again before the stop
                    if give_up_unreachable and flying == 0 and all(e.last_code == TRANSPORT for e in entries):
                        break
                    self._watch_saturation(entries)
                    self.queue.changed.wait(self._idle_wait(now, stop_at, due))
                    continue
            self._dispatch(ready, stop_at)
        self._watch_saturation(self.queue.snapshot())
        waiting, flying = self.queue.counts()
        report.carried_over, report.in_flight = waiting, flying
        report.tasks_hung = self.task_threads.hung()
        report.duration_ms = (self.clock() - started) * 1000
        return report

    def probe_unreachable(self) -> int:
        """At a new invoke: each item waiting out a backoff because its endpoint was unreachable
        (``Defer.TransportError``) is due at once; returns how many. A backoff set before the
        freeze says nothing of the network after the thaw, and the invoke's own window is
        what delivery has (its backoff, up to BACKOFF_CAP_S after a long outage, could
        otherwise outlast a short invoke). One probe each: the stall count stays, so an
        endpoint still down backs off as long as before. Throttled items keep their backoff:
        the service asked for it."""
        now = self.clock()
        probed = 0
        with self.queue.changed:
            for entry in self.queue.snapshot():
                if not entry.in_flight and entry.last_code == TRANSPORT and entry.not_before > now:
                    entry.not_before = now
                    probed += 1
            if probed:
                self.queue.changed.notify_all()
        return probed

    def _idle_wait(self, now: float, stop_at: float, due: Optional[float]) -> float:
        wake = stop_at if due is None else min(stop_at, due)
        for deadline, _, _ in self._task_deadlines.values():
            wake = min(wake, deadline)
        return max(0.0, wake - now)

    def _watch_saturation(self, entries: List[Entry]) -> None:
        """Report, once per episode, a task pool whose every worker is taken and some hung."""
        hung = self.task_threads.hung()
        saturated = hung > 0 and self.task_threads.free() == 0
        if saturated and not self._saturated:
            waiting = sum(1 for e in entries if e.item.kind == "task" and not e.in_flight)
            log.error("task pool saturated: %d task threads hung past their timeout; %d tasks wait for a worker",
                      hung, waiting, extra={"tasks_hung": hung, "tasks_waiting": waiting,
                                            "workers": self.task_threads.size})
        self._saturated = saturated

    # -- sending ------------------------------------------------------------------------
    def _dispatch(self, ready: List[Entry], stop_at: float) -> None:
        publishes = [e for e in ready if e.item.kind in self.sinks]
        for entry in ready:
            kind = entry.item.kind
            if kind == "task":
                self._start_task(entry)
            elif kind not in self.sinks:
                self._settle(entry, Outcome.failure(entry.item.id, UNKNOWN_KIND, f"no sink for {kind}",
                                                    sender_fault=True))
        for group in group_by(publishes, lambda e: (e.item.kind, e.item.target)):
            sink = self.sinks[group[0].item.kind]
            for batch in split_batches(group, sink.max_entries, sink.max_batch_bytes,
                                       lambda e: sink.entry_size(e.item), lambda e: fifo_group(e.item)):
                self._send_pool.submit(self._send_batch, sink, batch)

    def _send_batch(self, sink: Sink, batch: List[Entry]) -> None:
        self._report.add(api_calls=1)
        try:
            outcomes = sink.send(batch[0].item.target, [e.item for e in batch])
        except Exception as exc:  # noqa: BLE001 - a bug in an adapter must not strand items
            log.exception("sink %s failed unexpectedly", sink.service)
            outcomes = [Outcome.failure(e.item.id, "Defer.SinkError", repr(exc)) for e in batch]
        for entry, outcome in zip(batch, outcomes):
            self._settle(entry, outcome)

    def _start_task(self, entry: Entry) -> None:
        attempt = entry.attempts
        try:
            self.task_threads.start(lambda: self._run_task(entry, attempt))
        except RuntimeError as exc:  # no thread to be had: try again later, attempt not used
            log.error("cannot start a thread for task item %s: %s", entry.item.id, exc)
            self.queue.retry_later(entry.item.id, self.clock() + backoff_s(entry.stalls + 1),
                                   "Defer.NoThread", str(exc), uses_attempt=False)

    def _run_task(self, entry: Entry, attempt: int) -> None:
        item = entry.item
        assert isinstance(item, wire.TaskItem)
        if item.timeout_s:  # the clock starts when the task does, not when it was queued
            with self.queue.changed:
                self._task_deadlines[item.id] = (self.clock() + item.timeout_s, attempt, threading.get_ident())
                self.queue.changed.notify_all()
        pid = os.getpid()
        try:
            outcome = self.tasks.run(item, attempt)
        except BaseException as exc:  # noqa: BLE001 - never leave the item in flight
            if os.getpid() != pid:
                raise  # a child the task forked: it settles nothing (the journal is its parent's)
            outcome = Outcome.failure(item.id, TASK_FAILED, f"{type(exc).__name__}: {exc}")
        self.task_threads.finish(threading.get_ident())
        with self.queue.changed:
            current = self.queue.get(item.id)
            stale = current is None or current.attempts != attempt or not current.in_flight
            if not stale:
                self._task_deadlines.pop(item.id, None)
            self.queue.changed.notify_all()  # a worker is free again
        if not stale:  # otherwise this attempt already timed out and was settled
            self._settle(entry, outcome)

    def _expire_tasks(self, now: float) -> None:
        for item_id, (deadline, attempt, thread) in list(self._task_deadlines.items()):
            if now < deadline:
                continue
            self._task_deadlines.pop(item_id, None)
            entry = self.queue.get(item_id)
            if entry is not None and entry.attempts == attempt and entry.in_flight:
                self.task_threads.abandon(thread)
                timeout = entry.item.timeout_s  # type: ignore[union-attr]
                log.warning("task %s ran over its %gs timeout on attempt %d for item %s; its thread is abandoned",
                            entry.item.target, timeout, attempt, item_id,
                            extra={"item_id": item_id, "attempt": attempt})
                self._settle(entry, Outcome.failure(item_id, TASK_TIMEOUT, f"task ran over its {timeout:g}s timeout"))

    # -- outcomes -----------------------------------------------------------------------
    def max_attempts(self, item: wire.WorkItem) -> int:
        if isinstance(item, wire.TaskItem) and item.max_attempts:
            return item.max_attempts
        return self.config.max_attempts

    def _settle(self, entry: Entry, outcome: Outcome) -> None:
        item = entry.item
        if outcome.ok:
            self.queue.finish(item.id)
            self._tracebacks.pop(item.id, None)
            if dead_letters.is_dead_letter(item):
                self._report.add(dead_lettered=1)
                log.warning("dead-lettered %s", item.id[:-len(dead_letters.DLQ_SUFFIX)],
                            extra=dead_letters.describe_letter(item, self.config.log_payloads))
                return
            latency = (time.time_ns() // 1000 - item.enqueued_us) / 1000
            sink = self.sinks.get(item.kind)
            skipped = sink is not None and sink.trace_skipped(item)
            with self._report._lock:
                self._report.delivered += 1
                self._report.trace_context_skipped += skipped
                self._report.delivery_latency_ms.append(latency)
            return
        if outcome.traceback:
            self._tracebacks[item.id] = outcome.traceback
        if not outcome.uses_attempt:
            self._report.add(retried=1)
            self.queue.retry_later(item.id, self.clock() + backoff_s(entry.stalls + 1),
                                   outcome.code, outcome.message, uses_attempt=False)
            return
        if outcome.retryable and entry.attempts < self.max_attempts(item):
            self._report.add(retried=1)
            self.queue.retry_later(item.id, self.clock() + backoff_s(entry.attempts),
                                   outcome.code, outcome.message)
            return
        self.give_up(entry, outcome.code, outcome.message)

    def give_up(self, entry: Entry, code: str, message: str) -> None:
        """Queue the item's dead letter (or, with no DLQ or for a letter, log it at ERROR as
        given up); either way it leaves the queue, even when that fails (then it is logged at
        ERROR and counted as given up): an item left in flight would hold every later drain
        to its deadline, and stop a SHUTDOWN's loop over the rest."""
        item = entry.item
        try:
            self._give_up(entry, code, message)
        except Exception as exc:  # noqa: BLE001 - RecursionError included
            log.exception("gave up on %s %s to %s: %s: %s; its dead letter could not be queued (%s: %s)",
                          item.kind, item.id, item.target, code, message, type(exc).__name__, exc,
                          extra={"item_id": item.id, "kind": item.kind, "target": item.target,
                                 "error_code": code})
            with self._report._lock:
                self._report.given_up += 1
                self._report.given_up_ids.append(item.id)
        finally:
            self.queue.finish(item.id)

    def _give_up(self, entry: Entry, code: str, message: str) -> None:
        item = entry.item
        dlq_url = self.config.dlq_url
        traceback = self._tracebacks.pop(item.id, "")
        if dlq_url and not dead_letters.is_dead_letter(item):
            fields = dead_letters.describe(item, code, message, entry.attempts, self.config.log_payloads)
            letter = dead_letters.dead_letter_item(dlq_url, item, code, message, entry.attempts, traceback)
            if self.queue.add(letter):  # the last step that can fail: nothing is counted twice
                self.letters_queued += 1
            log.info("queued a dead letter for %s", item.id, extra=fields)
        else:
            self.lose(entry, code, message)

    def give_up_rest(self, code: str, reason: Callable[[Entry, str], str], *, spare_letters: bool) -> int:
        """Give up on every item still queued, in flight too (``give_up``: dead-lettered when a
        DLQ is set); ``reason(entry, last error)`` says why. With ``spare_letters``, letters
        already queued stay for a last drain. Returns how many letters this queued."""
        before = self.letters_queued
        for entry in self.queue.snapshot():
            if spare_letters and dead_letters.is_dead_letter(entry.item):
                continue
            last = f"{entry.last_code}: {entry.last_message}" if entry.last_code else ""
            self.give_up(entry, code, reason(entry, last))
        return self.letters_queued - before

    def lose(self, entry: Entry, code: str, message: str) -> None:
        """Log at ERROR and count an item that ends neither delivered nor dead-lettered."""
        item = entry.item
        if dead_letters.is_dead_letter(item):
            fields = dead_letters.describe_letter(item, self.config.log_payloads)
            fields.update(letter_error_code=code, letter_error=message)
            log.error("gave up on %s: its dead letter was not delivered (%s: %s)", fields["item_id"], code,
                      message, extra=fields)
        else:
            log.error("gave up on %s %s to %s: %s: %s", item.kind, item.id, item.target, code, message,
                      extra=dead_letters.describe(item, code, message, entry.attempts, self.config.log_payloads))
        with self._report._lock:
            self._report.given_up += 1
            self._report.given_up_ids.append(item.id)

    def shutdown(self, wait: bool = False) -> None:
        self._send_pool.shutdown(wait=wait, cancel_futures=not wait)
