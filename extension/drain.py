"""The drain: deliver what is queued until the queue is empty or the time is up.

One path for every destination: group by target, split into batches within the service's
limits, send several batches at once, read each entry's outcome, and then per item either
finish it, schedule another attempt (exponential backoff with jitter), or dead-letter it.
Nothing waits past ``stop_at``: calls still in flight then stay in flight (their outcome is
applied whenever they end, after the next thaw at the latest) and the rest is carried over.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List

from handler_lib import wire
from handler_lib.config import Config

from . import dead_letters
from .batching import group_by, split_batches
from .outcome import TASK_TIMEOUT, UNKNOWN_KIND, Outcome
from .pending import Entry, PendingQueue
from .sinks import Sink
from .tasks import TaskRunner

log = logging.getLogger("defer_runner.drain")

BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 5.0


def backoff_s(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter after the given number of attempts."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2 ** max(0, attempts - 1)))
    return ceiling * (0.5 + rng() / 2)


@dataclass
class DrainReport:
    """What one drain did; the runner logs it and emits it as metrics."""

    received: int = 0
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    given_up: int = 0  # no DLQ configured, or the dead letter itself failed: logged at ERROR
    carried_over: int = 0
    in_flight: int = 0
    api_calls: int = 0
    duration_ms: float = 0.0
    delivery_latency_ms: List[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> Dict[str, float]:
        latencies = sorted(self.delivery_latency_ms)
        return {"received": self.received, "delivered": self.delivered, "retried": self.retried,
                "dead_lettered": self.dead_lettered, "given_up": self.given_up,
                "carried_over": self.carried_over, "in_flight": self.in_flight,
                "api_calls": self.api_calls, "duration_ms": round(self.duration_ms, 3),
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
        self._task_pool = ThreadPoolExecutor(max(2, config.concurrency // 2), thread_name_prefix="defer-task")
        self._task_deadlines: Dict[str, tuple] = {}  # item id -> (monotonic deadline, attempt)
        self._report = DrainReport()

    # -- the loop -----------------------------------------------------------------------
    def drain(self, stop_at: float) -> DrainReport:
        """Deliver until nothing is waiting or in flight, or until ``stop_at`` (monotonic)."""
        report = self._report = DrainReport()
        started = self.clock()
        while True:
            with self.queue.changed:
                now = self.clock()
                self._expire_tasks(now)
                if now >= stop_at:
                    break
                ready = self.queue.take_ready(now)
                if not ready:
                    waiting, flying = self.queue.counts()
                    due = self.queue.next_due()
                    if flying == 0 and (waiting == 0 or (due is not None and due >= stop_at)):
                        break  # nothing left, or nothing can be tried again before the stop
                    self.queue.changed.wait(self._idle_wait(now, stop_at))
                    continue
            self._dispatch(ready, stop_at)
        waiting, flying = self.queue.counts()
        report.carried_over, report.in_flight = waiting, flying
        report.duration_ms = (self.clock() - started) * 1000
        return report

    def _idle_wait(self, now: float, stop_at: float) -> float:
        wake = stop_at
        due = self.queue.next_due()
        if due is not None:
            wake = min(wake, due)
        for deadline, _ in self._task_deadlines.values():
            wake = min(wake, deadline)
        return max(0.0, wake - now)

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
                                       lambda e: sink.entry_size(e.item)):
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
        item = entry.item
        assert isinstance(item, wire.TaskItem)
        if item.timeout_s:
            self._task_deadlines[item.id] = (self.clock() + item.timeout_s, entry.attempts)
        attempt = entry.attempts
        self._task_pool.submit(self._run_task, entry, attempt)

    def _run_task(self, entry: Entry, attempt: int) -> None:
        outcome = self.tasks.run(entry.item)  # type: ignore[arg-type]
        with self.queue.changed:
            current = self.queue.get(entry.item.id)
            if current is None or current.attempts != attempt or not current.in_flight:
                return  # this attempt already timed out and was settled
            self._task_deadlines.pop(entry.item.id, None)
        self._settle(entry, outcome)

    def _expire_tasks(self, now: float) -> None:
        for item_id, (deadline, attempt) in list(self._task_deadlines.items()):
            if now < deadline:
                continue
            self._task_deadlines.pop(item_id, None)
            entry = self.queue.get(item_id)
            if entry is not None and entry.attempts == attempt and entry.in_flight:
                timeout = entry.item.timeout_s  # type: ignore[union-attr]
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
            latency = (time.time_ns() // 1000 - item.enqueued_us) / 1000
            with self._report._lock:
                self._report.delivered += 1
                self._report.delivery_latency_ms.append(latency)
            return
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
        """Dead-letter an item (or, with no DLQ, log it at ERROR); it leaves the queue."""
        item = entry.item
        dlq_url = self.config.dlq_url
        if dlq_url and not dead_letters.is_dead_letter(item):
            letter = dead_letters.dead_letter_item(dlq_url, item, code, message, entry.attempts)
            self.queue.add(letter)
            self._report.add(dead_lettered=1)
            log.warning("dead-lettered %s", item.id, extra=dead_letters.describe(
                item, code, message, entry.attempts, False))
        else:
            self._report.add(given_up=1)
            log.error("gave up on %s", item.id, extra=dead_letters.describe(
                item, code, message, entry.attempts, self.config.log_payloads or dead_letters.is_dead_letter(item)))
        self.queue.finish(item.id)

    def shutdown(self, wait: bool = False) -> None:
        self._send_pool.shutdown(wait=wait, cancel_futures=not wait)
        self._task_pool.shutdown(wait=wait, cancel_futures=not wait)
