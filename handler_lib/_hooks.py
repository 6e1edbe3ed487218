"""``@defer.every``: a function's own upkeep (a secret, a cache, a pool), run after responses.

A hook is due once its interval has passed since it last ran (or, with ``run_first``, at the
first response). At the end of an invoke, the due hooks join the invoke's ``defer.after``
work: they run in the function's process after the response, with the extension holding the
environment until they are done (up to the invoke's deadline less the margin), exactly as
``defer.after`` callables do, and without an extension after the handler, before it returns.
They never run during a request, nor at import (init, or a SnapStart snapshot's init).

The schedule is kept in ``time.monotonic()``: the next run is set when a run starts, one
interval (plus jitter) ahead, never by adding up missed intervals, so an environment thawed
after hours runs a due hook once, not once per interval it slept through. A hook still
running (it outlived its invoke, frozen and thawed with the environment) is not started
again until it returns.

On Lambda Managed Instances nothing freezes and each worker process serves one request at a
time, taking the next as soon as it asks for one: work on a post-response thread would run
beside that next request. There the due hooks run in the runtime's own thread right after it
posted the response, before it asks for the next request (``run_between_requests``): the
worker takes no request while its hooks run (the others serve), and a hook that outlasts its
budget is left running on its thread, abandoned for that round.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, TypeVar

F = TypeVar("F", bound=Callable[[], Any])


class Hook:
    """One registered hook and its schedule."""

    def __init__(self, fn: Callable[[], Any], seconds: float, jitter: float, run_first: bool) -> None:
        self.fn = fn
        self.name = f"{fn.__module__}:{fn.__qualname__}"
        self.seconds = seconds
        self.jitter = jitter
        self.run_first = run_first
        self.runs = 0
        self.failures = 0
        self.running = False
        self.next_due = 0.0
        self.schedule(first=True)

    def schedule(self, first: bool = False, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        if first and self.run_first:
            self.next_due = now
            return
        spread = 0.0
        if self.jitter:
            import random  # only hooks with jitter pay for it

            spread = random.uniform(0, self.jitter)
        self.next_due = now + self.seconds + spread

    def __repr__(self) -> str:
        return f"<periodic hook {self.name} every {self.seconds:g} s>"


class _HookRun:
    """The ``defer.after`` callable of one run: logged and counted by that path under the
    hook's name. A ``SystemExit`` or ``KeyboardInterrupt`` from a hook is a failed run, never
    the end of the invoke (no extension: it would have been raised from the handler)."""

    def __init__(self, hook: Hook) -> None:
        self.hook = hook
        self.__qualname__ = f"periodic hook {hook.name}"

    def skip(self) -> None:
        """Not run after all: due again at the next chance, not one interval later."""
        with _lock:
            self.hook.running = False
            self.hook.next_due = 0.0

    def __call__(self) -> None:
        hook = self.hook
        pid = os.getpid()
        try:
            hook.fn()
        except Exception:
            hook.failures += 1
            raise
        except BaseException as exc:  # noqa: BLE001 - see the class docstring
            hook.failures += 1
            if os.getpid() != pid:
                raise  # a child the hook forked exits (see _after): nothing of the invoke is its own
            raise RuntimeError(f"periodic hook {hook.name} raised {type(exc).__name__}: {exc}") from exc
        finally:
            hook.runs += 1
            with _lock:
                hook.running = False


_hooks: List[Hook] = []
_lock = threading.Lock()
log = logging.getLogger("handler_lib")


def run_between_requests(runs: List[Callable[[], None]], budget_s: float) -> None:
    """Run ``runs`` (from ``due``) one after another, each on a thread joined for what is left of
    ``budget_s``; a failure is logged with its traceback (and counted on its hook), a run still
    going at the budget's end is abandoned: it stays marked running, so it is not started again
    until it returns."""
    give_up_at = time.monotonic() + max(0.0, budget_s)
    for run in runs:
        def logged(run: Callable[[], None] = run) -> None:
            try:
                run()
            except BaseException:  # noqa: BLE001 - a hook's failure is its own run's (see _HookRun)
                log.exception("lambda-defer: post-response work %s raised (between requests)",
                              getattr(run, "__qualname__", repr(run)))

        left = give_up_at - time.monotonic()
        if left <= 0:
            log.warning("lambda-defer: %s not run: the hooks' budget (%.1f s) is spent",
                        getattr(run, "__qualname__", repr(run)), budget_s)
            if isinstance(run, _HookRun):
                run.skip()
            continue
        thread = threading.Thread(target=logged, name="lambda-defer-hook", daemon=True)
        thread.start()
        thread.join(left)
        if thread.is_alive():
            log.warning("lambda-defer: %s still running after the hooks' budget (%.1f s): abandoned "
                        "for this round", getattr(run, "__qualname__", repr(run)), budget_s)


def every(seconds: float, *, jitter: float = 0.0, run_first: bool = False) -> Callable[[F], F]:
    """The ``@defer.every(seconds)`` decorator; the function is returned unchanged."""
    for name, value in (("seconds", seconds), ("jitter", jitter)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
                or value in (float("inf"), float("-inf")):
            raise ValueError(f"@defer.every: {name} must be a number of seconds, not {value!r}")
    if seconds <= 0:
        raise ValueError(f"@defer.every: seconds must be above 0, not {seconds!r}")
    if not 0 <= jitter <= seconds:
        raise ValueError(f"@defer.every: jitter must be in 0..seconds ({seconds:g}), not {jitter!r}")

    def register(fn: F) -> F:
        import inspect  # decoration time, once per hook: not on an invoke's path

        if not callable(fn) or not inspect.isfunction(fn):
            raise TypeError(f"@defer.every decorates a function, not {type(fn).__name__}")
        if "<locals>" in fn.__qualname__ or fn.__name__ == "<lambda>":
            raise ValueError(f"@defer.every needs a module-level function (registered once, at import); "
                             f"{fn.__module__}.{fn.__qualname__} is not one")
        if inspect.iscoroutinefunction(fn):
            raise TypeError(f"@defer.every runs plain functions; {fn.__qualname__} is a coroutine function")
        required = [p for p in inspect.signature(fn).parameters.values()
                    if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if required:
            raise TypeError(f"@defer.every calls {fn.__qualname__}() with no arguments; it requires "
                            f"{', '.join(p.name for p in required)}")
        name = f"{fn.__module__}:{fn.__qualname__}"
        with _lock:
            known = next((h for h in _hooks if h.name == name), None)
            if known is None:
                _hooks.append(Hook(fn, float(seconds), float(jitter), run_first))
            else:  # a reload: the same hook, whose run may be going on (never two at once)
                known.fn, known.seconds, known.jitter, known.run_first = fn, float(seconds), float(jitter), run_first
        return fn

    return register


def due(now: Optional[float] = None) -> List[Callable[[], None]]:
    """The runs to start now, each marked running and rescheduled (one interval ahead)."""
    if not _hooks:
        return []
    now = time.monotonic() if now is None else now
    runs: List[Callable[[], None]] = []
    with _lock:
        for hook in _hooks:
            if not hook.running and hook.next_due <= now:
                hook.running = True
                hook.schedule(now=now)
                runs.append(_HookRun(hook))
    return runs


def restart_schedule() -> None:
    """A SnapStart restore: the snapshot's clock says nothing of now; start each schedule over."""
    with _lock:
        for hook in _hooks:
            hook.schedule(first=True)


def registered() -> List[Hook]:
    with _lock:
        return list(_hooks)


def describe() -> List[Dict[str, Any]]:
    """For tests and logs: each hook's name, interval and counts."""
    now = time.monotonic()
    return [{"name": h.name, "seconds": h.seconds, "runs": h.runs, "failures": h.failures,
             "running": h.running, "due_in_s": max(0.0, h.next_due - now)} for h in registered()]
