"""Continuous delivery, for Lambda Managed Instances (LMI).

On LMI an extension cannot register for INVOKE (the register call is refused with 403
``Extension.InvalidEventType``), the environment is never frozen and several runtime
worker processes serve requests at once. So there is no "after the response" to drain in:
the extension registers for SHUTDOWN only and delivers items as they arrive, through the
same Drainer as on-demand (batching, retries, FIFO order, journal, DLQ, dead letters).

Items are held for a short batching window (``BATCH_WINDOW_S`` after the first one is
due, or until one target has a full batch ready), so one API call carries the items of
several concurrent requests; a drain then sends them and returns at once, so items that
arrive while those calls are out wait for the next window too. SHUTDOWN stops the delivery
thread (it ends within ``CYCLE_S``) and then runs the usual SHUTDOWN drain, so two drains
never run at once. The drain figures are logged per period ("drain finished", request id
``continuous``), not per batch. The handlers' acks are unchanged: each worker process has its
own connection and sends its end markers, which the runner answers as always.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from .lambda_api import ExtensionsApiError, ExtensionsClient, RegisteredExtension, ShutdownEvent

#: What Lambda sets in AWS_LAMBDA_INITIALIZATION_TYPE on Managed Instances.
MANAGED_INSTANCES = "lambda-managed-instances"
#: How long after its defer call the first due item waits for company before its batch goes out.
BATCH_WINDOW_S = 0.025
#: A drain sends what is due and returns after this: calls finish in the background, and
#: items that arrive meanwhile wait for their own window instead of leaving one by one ...
DISPATCH_S = 0.01
#: ... except while a task runs: then a drain stays up to this long, to enforce its timeout.
CYCLE_S = 0.1
#: How often the drain figures are logged and published as metrics while delivery is busy.
REPORT_EVERY_S = 10.0
SHUTDOWN_ONLY = ["SHUTDOWN"]


def _log() -> Any:
    """Logging loads after registering (see main), so not at import."""
    import logging

    return logging.getLogger("defer_runner.continuous")


def on_managed_instances() -> bool:
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == MANAGED_INSTANCES


def rejects_invoke(exc: ExtensionsApiError) -> bool:
    """The register reply of a platform that has no INVOKE event for extensions."""
    text = str(exc)
    return exc.status == 403 and "InvalidEventType" in text and "INVOKE" in text


def register(client: ExtensionsClient, name: str, events: List[str]) -> Tuple[RegisteredExtension, bool]:
    """Register; returns the extension and whether it must deliver continuously.

    On LMI (by its variable, or by a reply refusing INVOKE) the extension registers for
    SHUTDOWN only: failing init there would terminate the whole environment."""
    if on_managed_instances():
        return client.register(name, SHUTDOWN_ONLY), True
    try:
        return client.register(name, events), False
    except ExtensionsApiError as exc:
        if not rejects_invoke(exc):
            raise
        print(f"defer-runner: INVOKE refused ({exc}); registering for SHUTDOWN only and delivering "
              "continuously", file=sys.stderr, flush=True)
        return client.register(name, SHUTDOWN_ONLY), True


class ContinuousDelivery:
    """Stands in for the runner in the event loop: SHUTDOWN stops delivery, then drains."""

    def __init__(self, runner: Any, window_s: float = BATCH_WINDOW_S, cycle_s: float = CYCLE_S) -> None:
        self.runner = runner
        self.channel = runner.channel
        self.queue = runner.queue
        self.drainer = runner.drainer
        self.window_s = window_s
        self.cycle_s = cycle_s
        self._stopping = False
        self._open: Optional[Any] = None  # the latest drain's report, while its calls may settle into it
        self._period: Optional[Any] = None  # completed reports not yet published
        self._period_started = 0.0
        self._thread = threading.Thread(target=self._run, name="defer-continuous", daemon=True)

    def start(self) -> None:
        _log().info("continuous delivery (Managed Instances): SHUTDOWN only, batching window %d ms",
                    round(self.window_s * 1000), extra={"mode": MANAGED_INSTANCES})
        self._thread.start()

    def on_invoke(self, event: Any) -> None:
        """Never subscribed; an INVOKE here is ignored rather than drained beside the thread."""
        _log().warning("INVOKE event in continuous mode ignored", extra={"request_id": event.request_id})

    def on_shutdown(self, event: ShutdownEvent) -> Any:
        with self.queue.changed:
            self._stopping = True
            self.queue.changed.notify_all()
        self._thread.join(self.cycle_s + 1.0)
        return self.runner.on_shutdown(event)

    def on_api_gone(self, error: str) -> None:
        self.runner.on_api_gone(error)

    # -- the delivery thread --------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            try:
                work = self._next_work()
                if work == "settled":
                    self._close(final=True)
                elif work is not None:
                    # Send what is due and return (new items wait for the next window, not for
                    # these calls); with a task running, stay to enforce its timeout.
                    report = self.drainer.drain(time.monotonic() + (self.cycle_s if work == "tasks" else DISPATCH_S))
                    self._close(final=False)
                    self._open = report  # its calls settle into it until the next drain starts
                    self.channel.recheck_backlog()
                    self.queue.maintain_journal()
            except Exception:  # noqa: BLE001 - never let one cycle end delivery
                _log().exception("continuous delivery cycle failed; items stay queued")
                time.sleep(self.cycle_s)
        self._close(final=True)

    def _close(self, final: bool) -> None:
        """Fold the last drain's report (complete now) into the period's; publish the period
        every ``REPORT_EVERY_S`` and whenever delivery goes idle."""
        if self._open is not None:
            if self._period is None:
                self._period, self._period_started = self._open, time.monotonic()
            else:
                self._period.merge(self._open)
            self._open = None
        if self._period is not None and (final or time.monotonic() - self._period_started >= REPORT_EVERY_S):
            self.runner._account(self._period, "continuous")
            self._period = None

    def _next_work(self) -> Optional[str]:
        """Wait for: "due" (items due, held for the batching window), "tasks" (a task running:
        its timeout needs the drain), "settled" (nothing in flight: the open report is
        complete), or None (stopping)."""
        with self.queue.changed:
            while not self._stopping:
                now = time.monotonic()
                entries = self.queue.snapshot()
                if any(e.in_flight and e.item.kind == "task" for e in entries):
                    return "tasks"
                if any(not e.in_flight and e.not_before <= now for e in entries):
                    break
                if self._open is not None and not any(e.in_flight for e in entries):
                    return "settled"
                later = min((e.not_before for e in entries if not e.in_flight), default=None)
                self.queue.changed.wait(None if later is None else later - now)
            else:
                return None
            while not self._stopping:
                now = time.monotonic()
                due = [e for e in self.queue.snapshot() if not e.in_flight and e.not_before <= now]
                if not due or self._full_batch(due):
                    break
                # The window runs from the oldest due item's defer call, so intake time counts,
                # a retry (its backoff served) goes at once, and a drain that sent nothing (it
                # found its time up) is not followed by a whole new window.
                oldest_s = min(e.item.enqueued_us for e in due) / 1e6
                left = self.window_s - (time.time() - oldest_s)
                if left <= 0:
                    break
                self.queue.changed.wait(left)
            return None if self._stopping else "due"

    def _full_batch(self, due: List[Any]) -> bool:
        """One target already has a full API call's worth of items due."""
        counts: Dict[Tuple[str, str], int] = {}
        for entry in due:
            sink = self.drainer.sinks.get(entry.item.kind)
            if sink is None:
                return True  # tasks and unknown kinds gain nothing from waiting
            key = (entry.item.kind, entry.item.target)
            counts[key] = counts.get(key, 0) + 1
            if counts[key] >= sink.max_entries:
                return True
        return False
