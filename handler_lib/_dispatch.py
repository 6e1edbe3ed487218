"""Where an item goes once built: the extension's socket, a capture list, or inline delivery.

One dispatcher per process. The mode is decided from the environment on first use (not at
import, so tests and scripts can set ``DEFER_MODE`` first):

- the socket when the defer-runner extension listens (``auto``/``extension``);
- inline delivery after the handler returns, with one warning, when it does not (``auto``),
  or always (``inline``): work is late, never lost;
- a capture list inside ``handler_lib.testing.capture()``;
- the extension's own queue when the code runs inside the extension (a task deferring more).

Nothing is handed over on trust: at the end of a ``@defer`` invoke the extension confirms
which of the invoke's items it holds, and the handler delivers the rest itself (late, not
lost). Items sent outside any invoke (at init, before or after the ``@defer`` handler is
defined, from a thread of the handler's own, from an asyncio task that outlived its app
call, or built for an invoke that ended before they went) are loose: kept from the start of
the process, and confirmed with the next invoke's. While the extension says its queue is
over its memory bound, new items are delivered by the handler too, so the extension's memory
stays bounded; those of a FIFO group still go to the extension, which may hold the group's
earlier items (delivered from here they would overtake them).

Every invoke of a ``@defer`` process run by awslambdaric ends with an end marker: the
handler's own, or, for an invoke it was never called for (an outer decorator answered
without calling it), one sent when the runtime posts the response (``_runtime_hook``).

What the function delivers itself goes in deferral order; for a FIFO group (target and group
id) with any such item, it delivers all of the invoke's items of that group (those the
extension holds too: a duplicate, never an overtaking). When the invoke ends after its
post-response work, the items known to go inline are delivered before the end marker, which
keeps the environment thawed until then.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from . import _durable, _hooks
from . import _ids, handoff
from . import config as _config
from . import wire
from ._channel import ChannelStalled, ChannelUnavailable, SocketChannel
from ._invoke import TASK_INVOKE, AfterCall, Invoke, InvokeClock

LocalSink = Callable[[wire.WorkItem], None]
Connection = Tuple[SocketChannel, int]

#: After a wait on the extension was spent (it did not answer, or read nothing), no new
#: connection is tried for this long, nor before the next invoke: each try would cost the
#: wait again.
STALL_BACKOFF_S = 5.0
#: The shortest wait for the extension's ack at the end of an invoke (see Dispatcher._ack_wait_s).
ACK_FLOOR_S = 0.05
#: Loose items kept before a ``@defer`` handler exists (it may never exist: a script, a
#: handler without ``@defer``); past either bound the oldest are no longer kept.
EARLY_LOOSE_ITEMS = handoff.LOOSE_IDS_KEPT
EARLY_LOOSE_BYTES = 1 << 20
#: Hooks between two requests on Managed Instances, when the context tells no timeout.
HOOK_BUDGET_MS = 60_000
#: At most this many FIFO items are carried to the next invoke's end (Dispatcher._carry).
CARRY_MAX = 1000


class ExtensionUnavailableError(ConnectionError):
    """``DEFER_MODE=extension`` but no defer-runner extension is listening, or it is over its memory bound."""


def _group(item: wire.WorkItem) -> Optional[Tuple[str, str]]:
    """The FIFO group an item belongs to (its target and group id), or None."""
    group_id = getattr(item, "group_id", None)
    return (item.target, group_id) if group_id else None


def _in_deferral_order(sent: List[wire.WorkItem], inline: List[wire.WorkItem],
                       inline_at: List[int]) -> List[wire.WorkItem]:
    """An invoke's items as they were deferred: ``inline_at[k]`` items had been sent before ``inline[k]``."""
    if not inline:
        return sent
    ordered: List[wire.WorkItem] = []
    k = 0
    for position, item in enumerate(sent):
        while k < len(inline) and inline_at[k] <= position:
            ordered.append(inline[k])
            k += 1
        ordered.append(item)
    ordered.extend(inline[k:])
    return ordered


def _with_their_groups(ordered: List[wire.WorkItem], ids: Set[str]) -> List[wire.WorkItem]:
    """The items of ``ordered`` named in ``ids``, and every item of a FIFO group one of them is
    in, in their order: a group delivered from two places could be overtaken."""
    if not ids:
        return []
    groups = {g for g in (_group(i) for i in ordered if i.id in ids) if g is not None}
    if not groups:
        return [i for i in ordered if i.id in ids]
    return [i for i in ordered if i.id in ids or _group(i) in groups]


class _ThreadInvoke(threading.local):
    """The invoke a post-response thread works for; None in every other thread. A class
    attribute is each thread's default: reading it never raises and catches AttributeError
    (``getattr(local, name, None)`` on a thread that never set it cost ~0.4 µs a deferral)."""

    invoke: Optional[Invoke] = None


class Dispatcher:
    def __init__(self) -> None:
        self._config: Optional[_config.Config] = None
        self._channel: Optional[SocketChannel] = None
        self._wrapped = False
        self._posts = False  # the runtime's posts are reported here (_runtime_hook): every invoke gets a marker
        # Managed Instances: the due hooks of each invoke, run once the runtime posted its response
        self._hooks_after_post: Dict[str, Tuple[List[Callable[[], None]], float]] = {}
        self._forked = False  # a forked child: no invoke ends in it, nothing confirms its loose items
        # a forked child's bounds: the invoke its parent's forking thread worked for (the child
        # holds no invoke, but its waits and inline work must end with that one)
        self._fork_clock: Optional[InvokeClock] = None
        self._fork_give_up_at: Optional[float] = None
        self._warned = ""  # the reason last warned about, so each new reason is said once
        self._current: Optional[Invoke] = None  # the handler's invoke
        self._local = _ThreadInvoke()  # .invoke: the invoke a post-response thread works for
        self._invoked = False
        # request ids of invokes a @defer handler began (they end with its marker) or that
        # were ended at the runtime's post (an outer decorator answered without calling it)
        self._seen: handoff.Recent[str, bool] = handoff.Recent()
        self._lock = threading.Lock()  # sends and an invoke's lists against its end
        self._loose: List[wire.WorkItem] = []  # sent outside any invoke, not confirmed yet ...
        self._loose_on: Optional[Connection] = None  # ... over this connection
        self._loose_sizes: List[int] = []  # their frames' sizes (the bound before a @defer handler)
        self._loose_bytes = 0
        self._orphans: List[wire.WorkItem] = []  # loose ones of a connection since replaced
        # FIFO items that went to the extension unconfirmed and whose inline delivery ran out of
        # time: the extension may deliver them later, so they go again, first, with the next
        # invoke's end (a later item of their group delivered here must not overtake them)
        self._carried: List[wire.WorkItem] = []
        self._dial_after = 0.0  # no new connection before (monotonic): a wait on the extension was spent
        self._why_down = ""
        self.capture: Optional[List[wire.WorkItem]] = None
        self.capture_after: Optional[List[AfterCall]] = None
        self.local_sink: Optional[LocalSink] = None

    # -- set-up -------------------------------------------------------------------------
    @property
    def config(self) -> _config.Config:
        if self._config is None:
            self._config = _config.load()
        return self._config

    def reset(self) -> None:
        """Forget the mode and connection (tests that change the environment), and the inline
        engine, whose sinks hold the configuration they were made with (the claim check's
        bucket, the endpoint, the DLQ)."""
        if self._channel is not None:
            self._channel.close()
        inline = sys.modules.get(__name__.rpartition(".")[0] + "._inline")  # loaded only if it ran
        if inline is not None:
            inline.forget_engine()
        self.__init__()  # type: ignore[misc]

    @property
    def handler_defined(self) -> bool:
        """Whether a ``@defer`` handler was defined in this process."""
        return self._wrapped

    def wrapped_handler(self) -> None:
        """Called once when ``@defer`` wraps the handler, at import: dial the extension early."""
        self._wrapped = True
        if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
            _register_after_restore(self)
        from ._runtime_hook import install  # a leaf; it wraps awslambdaric's posts, when it runs us

        self._posts = install(_response_posted)
        if self._channel is not None:
            self._channel.mark_wrapped(self._posts)
        elif self._uses_socket():
            self._try_connect()

    def _uses_socket(self) -> bool:
        return self.config.mode != "inline" and not os.environ.get(_config.ENV_IN_RUNNER)

    def _try_connect(self) -> bool:
        if self._dial_after and time.monotonic() < self._dial_after:
            return False  # the extension hung a moment ago: each try would wait again
        channel = SocketChannel(self.config.socket_path, wrapped=self._wrapped, posts=self._posts)
        try:
            channel.connect()
        except ChannelUnavailable as exc:
            self._down(exc)
            return False
        self._channel = channel
        return True

    def _down(self, exc: ChannelUnavailable, channel: Optional[SocketChannel] = None) -> None:
        """The connection (or the attempt to make one) failed: say why, and after a spent wait
        make no new one for a while."""
        if channel is not None and self._channel is channel:
            self._channel = None
        self._dial_after = time.monotonic() + STALL_BACKOFF_S if isinstance(exc, ChannelStalled) else 0.0
        self._why_down = str(exc)

    # -- the invoke ---------------------------------------------------------------------
    @property
    def invoke(self) -> Optional[Invoke]:
        """The invoke the caller works for: its app call's (``defer.asgi``), its post-response
        thread's, else the handler's; one that has ended is passed over (an asyncio task that
        outlived its app call still carries it)."""
        # unrolled (a loop over a tuple of the three cost more than the lookups): on the hot path
        invoke = TASK_INVOKE.get()
        if invoke is not None and not invoke.ended:
            return invoke
        invoke = self._local.invoke
        if invoke is not None and not invoke.ended:
            return invoke
        invoke = self._current
        if invoke is not None and not invoke.ended:
            return invoke
        return None

    @property
    def request_id(self) -> str:
        invoke = self.invoke
        return invoke.request_id if invoke is not None else ""

    def begin(self, request_id: str, clock: Optional[Callable[[], int]] = None) -> Invoke:
        if not self._invoked:
            self._invoked = True
            # SnapStart: init ran before the snapshot, so the first invoke of each process is
            # in an environment restored from it, sharing its memory with every other one.
            if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
                self.after_restore()
        invoke = Invoke(request_id, clock)
        invoke.give_up_at = self._give_up_at(invoke.clock)
        self._current = invoke
        if request_id:
            self._seen[request_id] = True
        if self._channel is None and self._uses_socket() and self.local_sink is None:
            self._dial_after = 0.0  # each invoke tries once (an extension slow to start at init)
            self._try_connect()
        return invoke

    def response_posted(self, request_id: str) -> None:
        """The runtime posted the response (or error) of ``request_id`` (awslambdaric, see
        ``_runtime_hook``). An invoke a ``@defer`` handler began ends with that handler's own
        marker, after its post-response work; one it was never called for (an outer decorator
        answered without calling it) ends now: the extension, which saw a ``@defer`` process
        connect, would otherwise wait for a marker that never comes."""
        hooks = self._hooks_after_post.pop(request_id, None)
        if hooks is not None:
            _hooks.run_between_requests(*hooks)
        if request_id in self._seen or not self._posts:
            return
        self._seen[request_id] = True  # once, whoever reports it again
        channel = self._channel
        if channel is None or self.capture is not None or self.local_sink is not None:
            return  # no connection: the extension saw it close, and does not wait on it
        # Nothing was sent for it: the marker counts 0 items (loose ones, if the outer
        # decorator deferred any, are confirmed with the next @defer invoke's as before).
        channel.end_invoke(wire.EndOfInvoke(request_id, 0, 0, 0), self.config.ack_timeout_ms / 1000)

    def _give_up_at(self, clock: Optional[InvokeClock]) -> Optional[float]:
        """When (monotonic) a wait on the extension must give up: the invoke's deadline less
        the margin, capped as for delivery (a margin at or above the invoke's time would leave
        no wait at all: every new connection would count as stalled)."""
        if clock is None:
            return None
        try:
            margin_ms = _config.capped_margin_ms(self.config.deadline_margin_ms, clock.window_ms)
            left_ms = int(clock()) - margin_ms
        except (TypeError, ValueError):
            return None
        return time.monotonic() + max(0, left_ms) / 1000

    def finish(self, invoke: Invoke) -> None:
        """The handler returned: end the invoke now, or after its post-response work."""
        if self._current is invoke:
            self._current = None
        hooks: List[Callable[[], None]] = []
        if self.capture is None and self.capture_after is None:
            # periodic hooks whose interval has passed run as this invoke's post-response work;
            # on Managed Instances, in the runtime's thread once it posted the response (_hooks)
            runs = _hooks.due()
            if runs and self._posts and invoke.request_id and _managed_instances():
                self._hooks_after_post[invoke.request_id] = (runs, _hook_budget_s(invoke))
            else:
                hooks = runs
        if not invoke.after and not hooks:
            self.end_invoke(invoke)
        elif self._channel is not None and self._channel.connected and self._announce_after(invoke):
            from ._after import run_after_response  # loaded only by invokes that use defer.after

            invoke.after.extend((run, (), {}) for run in hooks)
            run_after_response(invoke, self.after_thread_invoke,
                               lambda ended: self.end_invoke(ended, marker_last=True))
        else:  # no extension to keep the environment thawed: the work runs before the response
            from ._after import run_after_work

            fatal = run_after_work(invoke, self.after_thread_invoke) if invoke.after else None
            self.end_invoke(invoke)
            if hooks:  # the function's own upkeep: bounded, as inline delivery is, abandoned past it
                _hooks.run_between_requests(hooks, self._inline_hook_budget_s(invoke))
            if fatal is not None:  # SystemExit, KeyboardInterrupt: once every callable ran
                raise fatal

    def _inline_hook_budget_s(self, invoke: Invoke) -> float:
        """Hooks run before the handler returns (no extension): the inline budget, cut to what
        is left of the invoke less the margin."""
        budget = max(0, self.config.inline_budget_ms) / 1000
        if invoke.give_up_at is not None:
            budget = min(budget, max(0.0, invoke.give_up_at - time.monotonic()))
        return budget

    def _announce_after(self, invoke: Invoke) -> bool:
        """Tell the extension to wait for this invoke's end marker, which comes after the work."""
        channel = self._channel
        try:
            channel.send(wire.encode(wire.AfterResponse(invoke.request_id)), invoke.give_up_at)  # type: ignore[union-attr]
            return True
        except ChannelUnavailable as exc:
            self._down(exc, channel)
            return False

    def _ack_wait_s(self, invoke: Invoke) -> float:
        """DEFER_ACK_TIMEOUT_MS, cut to what is left of the invoke less the margin (an end that
        comes late, after forked children or slow handlers took the time, must still leave by
        then), but at least ACK_FLOOR_S: a healthy extension answers within a millisecond,
        and an item taken for unconfirmed is delivered twice or, with no time left, given up."""
        wait = self.config.ack_timeout_ms / 1000
        if invoke.give_up_at is not None:
            wait = min(wait, max(ACK_FLOOR_S, invoke.give_up_at - time.monotonic()))
        return wait

    def end_invoke(self, invoke: Invoke, marker_last: bool = False) -> None:
        """Learn which items the extension holds, deliver the others and the inline work.

        ``marker_last``: the invoke ends after its post-response work, and the extension keeps
        the environment thawed until the end marker: the items known to go inline are
        delivered before it (on Lambda the environment may freeze as soon as the extension
        has drained)."""
        with self._lock:
            invoke.ended = self.capture is None  # under capture(), run_after() still works for it
            sent, invoke.unacked = invoke.unacked, []
            inline, invoke.inline = invoke.inline, []
            inline_at, invoke.inline_at = invoke.inline_at, []
            why, invoke.inline_why = invoke.inline_why, []
            loose, orphans, channel = self._take_loose_locked()
            carried, self._carried = self._carried, []
        if not invoke.request_id:  # called without a context: its items are loose ones too
            sent, loose = sent + loose, []
        notes: List[str] = [f"lambda-defer: {reason}; deferred work runs inline after the handler returns"
                            for reason in why]
        ordered = _in_deferral_order(sent, inline, inline_at)
        first: List[wire.WorkItem] = carried + orphans  # nothing can confirm them: their connection is gone
        if orphans:
            notes.append(handoff.shortfall(orphans, None, len(orphans)))
        early: List[wire.WorkItem] = []
        if marker_last and inline:
            early = _with_their_groups(ordered, {i.id for i in inline})
        unconfirmed = {i.id for i in first}  # what may be with the extension without its knowing
        left: List[wire.WorkItem] = []
        if first or early:
            if marker_last:
                left += self._deliver_inline(first + early, invoke.clock)
                first = []
        missing: List[wire.WorkItem] = []
        missing_loose: List[wire.WorkItem] = []
        if (channel is not None or sent or loose) and self.capture is None and self.local_sink is None:
            # No channel any more (it broke mid-invoke): what went out on it is unconfirmed too.
            end = wire.EndOfInvoke(invoke.request_id, len(sent), invoke.after_run, invoke.after_failed)
            ack = channel.end_invoke(end, self._ack_wait_s(invoke)) if channel is not None else None
            missing = handoff.unconfirmed(sent, ack)
            unconfirmed.update(i.id for i in missing)
            if missing:
                notes.append(handoff.shortfall(sent, ack, len(missing)))
            if loose:  # one more round trip, only when something was sent outside an invoke
                loose_end = wire.EndOfInvoke("", len(loose), 0, 0)
                loose_ack = (channel.end_invoke(loose_end, self._ack_wait_s(invoke))
                             if channel is not None and ack is not None else None)
                missing_loose = _with_their_groups(loose, {i.id for i in handoff.unconfirmed(loose, loose_ack)})
                unconfirmed.update(i.id for i in missing_loose)
                if missing_loose:
                    notes.append(handoff.shortfall(loose, loose_ack, len(missing_loose)))
        done = {i.id for i in early}
        own = {i.id for i in missing} | {i.id for i in inline if i.id not in done}
        rest = [i for i in _with_their_groups(ordered, own) if i.id not in done]
        left += self._deliver_inline(first + missing_loose + rest, invoke.clock)  # never past the invoke's end
        self._carry([i for i in left if i.id in unconfirmed])
        for note in filter(None, notes):  # after the delivery: warnings turned into errors lose nothing
            warnings.warn(note, RuntimeWarning, stacklevel=_user_stacklevel())

    def _take_loose_locked(self) -> Tuple[List[wire.WorkItem], List[wire.WorkItem], Optional[SocketChannel]]:
        """(loose items to confirm, loose items nothing can confirm any more, the channel)."""
        loose, self._loose, self._loose_sizes, self._loose_bytes = self._loose, [], [], 0
        orphans, self._orphans = self._orphans, []
        channel = self._channel
        if loose and (channel is None or self._loose_on != (channel, channel.connection)):
            orphans, loose = orphans + loose, []  # a confirmation counts its own connection's only
        return loose, orphans, channel

    def after_restore(self) -> None:
        """A new life of a snapshotted process: new ids, and no connection from before the snapshot.

        Nor its loose items: the extension, snapshotted with them, holds what came over it,
        which the new connection's confirmation cannot count (each restore delivered them again)."""
        _ids.reseed()
        _hooks.restart_schedule()
        with self._lock:
            self._loose, self._loose_sizes, self._loose_bytes, self._orphans = [], [], 0, []
            self._carried = []  # the extension was snapshotted with them: it delivers them again
        if self._channel is not None:
            self._channel.close()

    # -- post-response work -------------------------------------------------------------
    def after(self, fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        if not callable(fn):
            raise TypeError(f"defer.after needs a callable, not {type(fn).__name__}")
        if self.capture_after is not None:
            self.capture_after.append((fn, args, kwargs))
            return
        invoke = self.invoke
        if invoke is None:
            raise RuntimeError("defer.after runs work after an invoke's response, so it needs an invoke: "
                               "call it while a handler decorated with @defer (or made by defer.asgi) runs")
        invoke.after.append((fn, args, kwargs))

    def after_thread_invoke(self, invoke: Optional[Invoke]) -> None:
        """Make the calling (post-response) thread work for ``invoke``."""
        self._local.invoke = invoke

    # -- the hot path -------------------------------------------------------------------
    def submit(self, item: wire.WorkItem) -> str:
        frame = wire.encode(item)  # raises TypeError/ValueError before anything is queued
        if _durable.replaying():  # a durable handler's replay: its first run deferred this
            return item.id
        if self.capture is not None:
            self.capture.append(item)
            return item.id
        if self.local_sink is not None:
            self.local_sink(item)
            return item.id
        channel = self._channel
        if channel is None and self._uses_socket() and self._try_connect():
            channel = self._channel
        if channel is not None and channel.backlogged and _group(item) is None:
            # (a FIFO group's item still goes: the extension may hold the group's earlier ones)
            if self.config.mode == "extension":
                raise ExtensionUnavailableError(
                    "the defer-runner extension is over its memory bound (DEFER_MAX_QUEUED_MB); "
                    "set DEFER_MODE=auto to deliver from the function meanwhile")
            self._go_inline(item, "the extension is over its memory bound (DEFER_MAX_QUEUED_MB)")
            return item.id
        if channel is not None:
            try:
                self._send(item, frame, channel)
                return item.id
            except ChannelUnavailable as exc:
                self._down(exc, channel)
                if self.config.mode == "extension":
                    raise ExtensionUnavailableError(str(exc)) from exc
        elif self.config.mode == "extension" and self._uses_socket():
            raise ExtensionUnavailableError(
                f"DEFER_MODE=extension but no defer-runner listens on {self.config.socket_path}; "
                "attach the layer or set DEFER_MODE=auto")
        self._go_inline(item, self._why_down or f"no defer-runner extension on {self.config.socket_path}")
        return item.id

    def _send(self, item: wire.WorkItem, frame: bytes, channel: SocketChannel) -> None:
        """Send an item and keep it until the extension confirms it: with its invoke, or as
        loose. Under the lock, so an invoke's end and an item of that invoke never cross: the
        item is either counted by its end marker or sent as loose."""
        with self._lock:
            invoke = self.invoke
            if item.request_id and (invoke is None or invoke.request_id != item.request_id):
                # Built for an invoke that has ended since (a thread racing its end): loose.
                item = item._replace(request_id="")
                frame = wire.encode(item)
            connection = (channel, channel.send(frame, invoke.give_up_at if invoke is not None
                                                else self._fork_bounds()[1]))
            if item.request_id:
                invoke.unacked.append(item)  # type: ignore[union-attr]
            elif self._wrapped or not self._forked:  # an end marker may come to confirm it
                if self._loose_on != connection:
                    self._orphans += self._loose
                    self._loose, self._loose_sizes, self._loose_bytes = [], [], 0
                    self._loose_on = connection
                self._loose.append(item)
                self._loose_sizes.append(len(frame))
                self._loose_bytes += len(frame)
                if not self._wrapped:  # no @defer handler yet, and maybe never: keep the latest only
                    while len(self._loose) > EARLY_LOOSE_ITEMS or self._loose_bytes > EARLY_LOOSE_BYTES:
                        del self._loose[0]
                        self._loose_bytes -= self._loose_sizes.pop(0)

    def _go_inline(self, item: wire.WorkItem, why: str) -> None:
        say = self.config.mode != "inline" and why != self._warned
        if say:
            self._warned = why
        with self._lock:
            invoke = self.invoke
            if invoke is not None:
                with_invoke = len(invoke.unacked)
                invoke.inline.append(item)
                invoke.inline_at.append(with_invoke)
                if say:
                    invoke.inline_why.append(why)  # said at its end, once it delivered them
                return
            # Outside an invoke: delivered now, after the loose items nothing can confirm any
            # more (their connection is gone), which were deferred before it.
            channel = self._channel
            gone = bool(self._loose) and (channel is None or self._loose_on != (channel, channel.connection))
            earlier, self._orphans = self._orphans, []
            if gone:
                earlier += self._loose
                self._loose, self._loose_sizes, self._loose_bytes = [], [], 0
        self._deliver_inline(earlier + [item], self._fork_bounds()[0])
        if say:
            warnings.warn(f"lambda-defer: {why}; deferred work runs inline after the handler returns",
                          RuntimeWarning, stacklevel=_user_stacklevel())

    def _fork_bounds(self) -> Tuple[Optional[InvokeClock], Optional[float]]:
        """(clock, give_up_at) of the invoke a forked child's parent worked for at the fork,
        while it lasts: the child's waits and inline work end with it. Past it (a child that
        outlives the invoke, a pool's worker) the child has its own bounds, as any process
        outside an invoke."""
        if self._fork_give_up_at is None or time.monotonic() >= self._fork_give_up_at:
            return None, None
        return self._fork_clock, self._fork_give_up_at

    @staticmethod
    def _deliver_inline(items: List[wire.WorkItem], clock: Optional[Callable[[], int]] = None) -> List[wire.WorkItem]:
        """Deliver here; returns the items the inline budget ran out on. With no items, what an
        earlier inline delivery left in its engine (letters its budget ran out on) goes now,
        briefly (``_inline.LEFTOVER_S``): nothing else would send it while the extension takes
        this process's items."""
        if not items:
            inline = sys.modules.get(__name__.rpartition(".")[0] + "._inline")  # loaded only if it ran
            if inline is not None and inline.pending():
                inline.deliver_leftovers(clock)
            return []
        from ._inline import deliver_inline  # boto3 is loaded only when work runs inline

        left = set(deliver_inline(items, clock))
        return [i for i in items if i.id in left]

    def _carry(self, items: List[wire.WorkItem]) -> None:
        """Keep, for the next invoke's end, the FIFO items among ``items`` (at most CARRY_MAX)."""
        fifo = [i for i in items if getattr(i, "group_id", None) is not None]
        if fifo:
            with self._lock:
                self._carried = (fifo + self._carried)[:CARRY_MAX]


DISPATCHER = Dispatcher()

_LIBRARY = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this library: the
    line of the caller's code that called the handler or deferred the item, not ours."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _managed_instances() -> bool:
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "lambda-managed-instances"


def _hook_budget_s(invoke: Invoke) -> float:
    """Hooks between two requests of a Managed Instances worker: as long as an invoke may run
    (the function's timeout), so a hook that hangs takes its worker out for that long only."""
    window_ms = invoke.clock.window_ms if invoke.clock is not None else None
    return (window_ms if window_ms else HOOK_BUDGET_MS) / 1000


def _response_posted(request_id: str) -> None:
    DISPATCHER.response_posted(request_id)


def _register_after_restore(dispatcher: "Dispatcher") -> None:
    """SnapStart's runtime hook, where the runtime has it; the first invoke covers it elsewhere."""
    try:
        from snapshot_restore_py import register_after_restore  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return

    def restored() -> None:
        dispatcher._invoked = True  # the hook did what the first invoke would do
        dispatcher.after_restore()

    register_after_restore(restored)


def _after_fork_in_child() -> None:
    """A forked child owns none of the parent's locks or invokes: nothing ends them in the child,
    so its items are never held for an end (inline work goes at once), but its waits on the
    extension and its inline work end with the invoke the forking thread worked for."""
    invoke = DISPATCHER.invoke  # the forking thread's (the only thread left)
    DISPATCHER._fork_clock = invoke.clock if invoke is not None else DISPATCHER._fork_clock
    DISPATCHER._fork_give_up_at = invoke.give_up_at if invoke is not None else DISPATCHER._fork_give_up_at
    DISPATCHER._lock = threading.Lock()
    DISPATCHER._loose = []  # sent on the parent's connection: the parent confirms them
    DISPATCHER._loose_sizes, DISPATCHER._loose_bytes = [], 0
    DISPATCHER._orphans = []
    DISPATCHER._carried = []  # the parent's to deliver again, not the child's
    DISPATCHER._wrapped = False  # nor are its loose ones: no end marker would come to release them
    DISPATCHER._posts = False
    DISPATCHER._forked = True
    DISPATCHER._current = None
    DISPATCHER._local = _ThreadInvoke()


os.register_at_fork(after_in_child=_after_fork_in_child)
