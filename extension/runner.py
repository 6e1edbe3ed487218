"""The per-invoke protocol: wait for the handler to finish, drain, and only then call next.

On INVOKE the runner waits for the end-of-invoke marker of that request (a ``@defer``
handler; when it announced post-response work with an ``after`` frame, the marker comes
once that work is done; a process whose hello says ``posts`` sends one for every invoke,
also those an outer decorator answered without calling the ``@defer`` handler), or for the
response posted as the Runtime API proxy saw it, or for Telemetry ``platform.runtimeDone``
(an unwrapped handler, where the platform delivers telemetry), or for nothing (none of
these; nor when the only ``@defer`` processes cannot say that every invoke ends: it cannot
know, and a wait could last to the deadline), never past the deadline minus the margin;
then it drains. Each end marker is answered with an ack of the invoke's items held (by the
channel's routing, from the receipts of the connection the marker came over). What is
left is carried over to the next invoke. On SHUTDOWN it drains within the budget; what is still undelivered is dead-lettered, except on a reset
(timeout, failure), where the journal replays it in the environment's next life.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple, Union

from handler_lib import wire
from handler_lib.config import Config, delivery_margin_ms
from handler_lib.handoff import Recent

from .channel import ChannelHandlers, Peer, Reader
from .lambda_api import InvokeEvent, ShutdownEvent
from handler_lib.engine.pending import PendingQueue

if TYPE_CHECKING:  # the drain's modules load with the drainer, after the extension is ready
    from handler_lib.engine.drain import DrainReport, Drainer

log = logging.getLogger("defer_runner.runner")

#: Time kept back at SHUTDOWN for dead-lettering what the drain could not deliver ...
SHUTDOWN_RESERVE_MS = 700
#: ... and, of that, for logging every item that is still neither delivered nor dead-lettered.
SHUTDOWN_LAST_WORDS_MS = 250


def monotonic_deadline(deadline_ms: int, margin_ms: int) -> float:
    """Convert an epoch-ms deadline (minus a margin) to the monotonic clock."""
    left_s = (deadline_ms - margin_ms - time.time() * 1000) / 1000
    return time.monotonic() + max(0.0, left_s)


class Runner:
    def __init__(self, config: Config, queue: PendingQueue, drainer: Union[Drainer, Callable[[], Drainer]],
                 channel: Reader, metrics: Optional[Any] = None) -> None:
        """``drainer``: the Drainer, or what makes it on first use: the drain's modules (sinks,
        tasks, dead letters) are not needed to take items in, so they need not load before the
        extension reports ready (where the runtime's init waits for it)."""
        self.config = config
        self.queue = queue
        self._drainer: Optional[Drainer] = None if callable(drainer) else drainer
        self._make_drainer: Optional[Callable[[], Drainer]] = drainer if callable(drainer) else None
        self._drainer_lock = threading.Lock()
        self.channel = channel
        self.metrics = metrics
        self.telemetry_active = False
        self.proxy_active = False  # the runtime calls through our Runtime API proxy
        self._state = threading.Condition()
        self._ended: Recent[str, int] = Recent()
        self._after: Recent[str, float] = Recent()  # request ids whose post-response work runs (defer.after)
        self.after_run = 0  # post-response callables the handlers ran, and how many raised
        self.after_failed = 0
        self._after_before = (0, 0)
        self._runtime_done: Recent[str, str] = Recent()
        self._wrapped_conns = 0
        self._reporting_conns = 0  # of those, the ones whose process sends a marker for every invoke
        self._said_unreported = False
        self.wrapped_seen = False
        self.dialled = False  # a process said hello on the socket (wrapped or not)
        self._added_before = 0

    @property
    def drainer(self) -> Drainer:
        drainer = self._drainer
        if drainer is None:
            with self._drainer_lock:
                if self._drainer is None:
                    assert self._make_drainer is not None
                    self._drainer = self._make_drainer()
                drainer = self._drainer
        return drainer

    @property
    def drainer_built(self) -> bool:
        return self._drainer is not None

    # -- channel callbacks (reader thread) ------------------------------------------------
    def handlers(self) -> ChannelHandlers:
        return ChannelHandlers(on_item=self.on_item, on_end=self.on_end, on_hello=self.on_hello,
                               on_close=self.on_close, on_after=self.on_after,
                               backlogged=self.queue.over_limit, hand_back=self.hand_back)

    def on_item(self, item: wire.WorkItem, body: Optional[bytes] = None) -> Tuple[str, bool]:
        """Queue (and journal) an item; returns the key it is held under and whether it is journaled."""
        _, key, journaled = self.queue.receive(item, body=body)
        return key, journaled

    def hand_back(self, keys: List[str]) -> List[str]:
        """At an end marker: the items it covers that the journal does not hold (a full /tmp)
        are not confirmed; the handler delivers them itself, and this drain too."""
        back = self.queue.hand_back(keys)
        if back:
            log.warning("%d items could not be journaled (is /tmp full?): the handler delivers them itself, "
                        "and the extension too (at least once: neither copy is durable)",
                        len(back), extra={"handed_back": len(back),
                                          "unjournaled": self.queue.journal.unjournaled if self.queue.journal else 0})
        return back

    def on_hello(self, conn: Peer, hello: wire.Hello) -> None:
        # The hello's paths are never used for imports: tasks come only from the function's
        # code and the layers (tasks.py), whatever a process on the socket claims.
        if not self.dialled:
            with self._state:
                self.dialled = True
                self._state.notify_all()
        was = conn.hello
        wrapped_before = was is not None and was.wrapped
        reporting_before = wrapped_before and was is not None and was.posts
        wrapped_now = hello.wrapped or wrapped_before  # a connection's hello never unwraps it
        reporting_now = wrapped_now and hello.posts
        if (wrapped_now, reporting_now) != (wrapped_before, reporting_before):
            with self._state:
                self.wrapped_seen = True
                self._wrapped_conns += wrapped_now - wrapped_before
                self._reporting_conns += reporting_now - reporting_before
                self._state.notify_all()

    def on_after(self, after: wire.AfterResponse) -> None:
        """The response is out and post-response work runs: its end marker comes when it is done."""
        with self._state:
            self._after[after.request_id] = time.monotonic()
            self._state.notify_all()

    def on_end(self, end: wire.EndOfInvoke) -> None:
        """The handler is done (the channel's routing acks the items it sent on its connection)."""
        self.after_run += end.after_run
        self.after_failed += end.after_failed
        with self._state:
            self._after.pop(end.request_id, None)
            self._ended[end.request_id] = end.count
            self._state.notify_all()

    def on_close(self, conn: Peer) -> None:
        if conn.hello is not None and conn.hello.wrapped:
            with self._state:
                self._wrapped_conns -= 1
                self._reporting_conns -= conn.hello.posts
                self._state.notify_all()

    def on_response_posted(self, request_id: str) -> None:
        """The runtime posted this invoke's response (seen by the Runtime API proxy)."""
        self.on_runtime_done(request_id, "posted")

    def on_runtime_done(self, request_id: str, status: str) -> None:
        with self._state:
            self._runtime_done[request_id] = status
            self._state.notify_all()

    # -- lifecycle ----------------------------------------------------------------------
    def on_invoke(self, event: InvokeEvent) -> DrainReport:
        # INVOKE comes as the invoke starts: its time left is the function's timeout, of which
        # the margin never takes all.
        margin_ms = delivery_margin_ms(self.config.deadline_margin_ms, event.deadline_ms - time.time() * 1000)
        stop_at = monotonic_deadline(event.deadline_ms, margin_ms)
        self.wait_for_handler(event.request_id, stop_at)
        report = self.drainer.drain(stop_at)
        self.channel.recheck_backlog()
        self._account(report, event.request_id)
        self.queue.maintain_journal()
        return report

    def wait_for_handler(self, request_id: str, stop_at: float) -> str:
        """Block until the handler of ``request_id`` is done; return what said so."""
        self.channel.sync()
        synced_after_runtime_done = False
        while True:
            with self._state:
                if not self.wrapped_seen and not self.telemetry_active and not self.proxy_active:
                    return "unwrapped"
                if not self.dialled and self.config.mode == "inline":
                    # DEFER_MODE=inline: the function delivers its own work and never dials,
                    # so there is nothing to wait for; waiting for runtimeDone anyway billed
                    # each invoke the Telemetry API's buffering (25 ms) for nothing. A process
                    # that dials all the same (its own DEFER_MODE), @defer or not, is waited
                    # for as in extension mode from its hello on.
                    return "inline"
                outcome = self._wait_locked(request_id, stop_at)
            if outcome != "runtimeDone" or synced_after_runtime_done:
                break
            # runtimeDone can overtake an ``after`` frame still in the socket: read it first.
            self.channel.sync()
            synced_after_runtime_done = True
        if outcome in ("end", "runtimeDone"):
            # Items travel before their marker on one connection; after a reconnect, or when the
            # runtimeDone event came first, read what is still in the socket.
            self.channel.sync()
            return "done"
        return outcome

    def _wait_locked(self, request_id: str, stop_at: float) -> str:
        while True:
            if request_id in self._ended:
                return "end"
            if request_id in self._runtime_done and request_id not in self._after:
                return "runtimeDone"
            if self.wrapped_seen and self._wrapped_conns <= 0 and not self.telemetry_active \
                    and not self.proxy_active:
                log.warning("the handler's connection closed before its end marker",
                            extra={"request_id": request_id})
                return "closed"
            if self._wrapped_conns > 0 and self._reporting_conns <= 0 and not self.telemetry_active \
                    and not self.proxy_active:
                # Its runtime does not say when each response is posted (not awslambdaric, or
                # one of another shape): an outer decorator that answers without calling the
                # @defer handler would send no marker, and the wait would last to the deadline.
                self._say_unreported()
                return "unreported"
            left = stop_at - time.monotonic()
            if left <= 0:
                if request_id in self._after:
                    log.warning("post-response work (defer.after) is still running at the deadline; it "
                                "is frozen with the environment and resumes at the next thaw",
                                extra={"request_id": request_id})
                else:
                    log.warning("no end-of-invoke marker before the deadline; draining what arrived",
                                extra={"request_id": request_id})
                return "deadline"
            self._state.wait(left)

    def _say_unreported(self) -> None:
        if not self._said_unreported:
            self._said_unreported = True
            log.warning("the function's runtime does not report when it posts a response, and there is "
                        "neither Telemetry nor the Runtime API proxy: each invoke is drained at once, and "
                        "items deferred after that ride on the next drain; set AWS_LAMBDA_EXEC_WRAPPER="
                        "/opt/defer-runner/exec-wrapper to drain each invoke's items in it")

    def on_shutdown(self, event: ShutdownEvent) -> DrainReport:
        """Drain within the budget; on a spin-down, dead-letter the rest, and log at ERROR (and
        count as given up) every item that ends this process neither delivered nor dead-lettered."""
        from handler_lib.engine.outcome import SHUTDOWN_UNDELIVERED  # with the drain, after ready

        stop_at = monotonic_deadline(event.deadline_ms, SHUTDOWN_RESERVE_MS)
        self.channel.sync(timeout=0.2)
        self._take_function_letters()
        report = self.drainer.drain(stop_at)
        left = self.queue.snapshot()
        if left and event.is_reset:
            final = self._unjournaled_at_reset(event)
            if final is not None:
                report.merge(final)
            kept = len(self.queue.snapshot())
            if kept:
                log.warning("shutdown for a reset: %d undelivered items stay in the journal for the next start",
                            kept, extra={"reason": event.reason})
        elif left:
            # The process ends now: a call still in flight is abandoned, so its items are
            # dead-lettered too (if the call did land, that is a duplicate, which the
            # at-least-once rule allows; losing them is not allowed).
            # A letter queued earlier is spared: it goes out in the last drain below.
            self.drainer.give_up_rest(
                SHUTDOWN_UNDELIVERED, lambda entry, last: f"not delivered before SHUTDOWN ({event.reason})"
                + (f"; last error {last}" if last else ""), spare_letters=True)
            # The dead letters just queued go out in batched calls, within what is left.
            final = self.drainer.drain(monotonic_deadline(event.deadline_ms, SHUTDOWN_LAST_WORDS_MS))
            final.carried_over = final.in_flight = 0  # nothing is carried past this process
            for entry in self.queue.snapshot():
                self.drainer.lose(entry, entry.last_code or SHUTDOWN_UNDELIVERED,
                                  f"the process ends at SHUTDOWN ({event.reason}) with it "
                                  f"{'in flight' if entry.in_flight else 'undelivered'}"
                                  + (f"; last error: {entry.last_message}" if entry.last_message else ""))
            report.merge(final)
        self._account(report, "shutdown")
        return report

    def _take_function_letters(self) -> None:
        """The dead letters the function's inline engine still held for a later invoke's end,
        which will not come (``handler_lib._waiting_letters``): queued here, in this journal."""
        journal = self.queue.journal
        if journal is None:
            return
        try:
            taken = journal.adopt_function_files({e.item.id: e.item for e in self.queue.snapshot()})
        except OSError as exc:
            log.error("the function's waiting dead letters could not be read at SHUTDOWN: %s", exc)
            return
        for item in taken:
            self.queue.add(item, journal=False)

    def _unjournaled_at_reset(self, event: ShutdownEvent) -> Optional[DrainReport]:
        """A reset keeps only what the journal holds: what it could not take (a full /tmp) is
        written now if it can be, else dead-lettered, else logged at ERROR as given up."""
        from handler_lib.engine.outcome import SHUTDOWN_UNDELIVERED

        self.queue.maintain_journal()
        memory_only = [e for e in self.queue.snapshot() if not self.queue.held(e.item.id)]
        if not memory_only:
            return None
        for entry in memory_only:
            last = f"; last error {entry.last_code}: {entry.last_message}" if entry.last_code else ""
            self.drainer.give_up(entry, SHUTDOWN_UNDELIVERED, f"not delivered before SHUTDOWN ({event.reason}), "
                                 f"and the journal (full?) could not keep it for the next start{last}")
        final = self.drainer.drain(monotonic_deadline(event.deadline_ms, SHUTDOWN_LAST_WORDS_MS))
        for entry in self.queue.snapshot():
            if not self.queue.held(entry.item.id):
                self.drainer.lose(entry, entry.last_code or SHUTDOWN_UNDELIVERED,
                                  f"the process ends at SHUTDOWN ({event.reason}) with it undelivered, "
                                  "and the journal (full?) could not keep it for the next start")
                self.queue.finish(entry.item.id)
        final.carried_over, final.in_flight = self.queue.counts()
        return final

    def on_api_gone(self, error: str) -> None:
        """The extension exits outside SHUTDOWN (the Extensions API stopped answering): no
        drain can run, so every item it holds gets an ERROR line. They stay in the journal,
        and go out only if this environment starts an extension again."""
        from handler_lib.engine import dead_letters
        from handler_lib.engine.outcome import API_GONE_UNDELIVERED

        for entry in self.queue.snapshot():
            item = entry.item
            where = ("it stays in the journal for a restart of this environment" if self.queue.held(item.id)
                     else "the journal (full?) could not take it: it is lost with this process")
            log.error("exiting with %s %s to %s undelivered: the Extensions API is gone; %s",
                      item.kind, item.id, item.target, where,
                      extra=dead_letters.describe(item, API_GONE_UNDELIVERED, error, entry.attempts,
                                                 self.config.log_payloads))

    def _account(self, report: DrainReport, request_id: str) -> None:
        added = self.queue.added_total - self.drainer.letters_queued  # dead letters are not new work
        report.received, self._added_before = added - self._added_before, added
        report.after_run = self.after_run - self._after_before[0]
        report.after_failed = self.after_failed - self._after_before[1]
        self._after_before = (self.after_run, self.after_failed)
        if report.api_calls == 0 and report.delivered == 0 and report.carried_over == 0 \
                and report.given_up == 0 and report.dead_lettered == 0 and report.after_run == 0:
            return  # an invoke that deferred nothing costs nothing, not even a log line
        log.info("drain finished", extra={"request_id": request_id, **report.as_dict()})
        if self.metrics is not None:
            self.metrics.publish(report)
