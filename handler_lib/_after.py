"""Post-response work in the function's own process (``defer.after``).

When the handler returns, its ``@defer`` wrapper hands the invoke's callables to a thread
and returns at once; the runtime posts the response and waits in ``next`` without holding
the GIL, so the thread runs while the caller already has its answer. The extension was told
(an ``after`` frame) to wait for this invoke's end marker, which the thread sends when the
work is done: the environment is not frozen under it, up to the invoke's deadline.

Each callable runs in turn; one that raises is logged with its traceback and counted, and
the next one still runs. What a callable defers belongs to the same invoke, and is handed
over and confirmed with it.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from ._invoke import Invoke

log = logging.getLogger("handler_lib")

#: Makes the calling thread work for an invoke (None: for none), so what it defers is the invoke's.
BindThread = Callable[[Optional[Invoke]], None]


def run_after_work(invoke: Invoke, bind: BindThread) -> None:
    """Run the invoke's post-response callables here, now, in order (and those they add)."""
    bind(invoke)
    try:
        while invoke.after:
            fn, args, kwargs = invoke.after.pop(0)
            invoke.after_run += 1
            try:
                fn(*args, **kwargs)
            except Exception:  # noqa: BLE001 - one failing callable must not stop the others
                invoke.after_failed += 1
                log.exception("lambda-defer: post-response work %s raised (request %s)",
                              getattr(fn, "__qualname__", repr(fn)), invoke.request_id)
    finally:
        bind(None)


def run_after_response(invoke: Invoke, bind: BindThread, end: Callable[[Invoke], None]) -> None:
    """Run the work on a thread of its own and ``end`` the invoke when it is done."""

    def work() -> None:
        try:
            run_after_work(invoke, bind)
        finally:
            end(invoke)

    threading.Thread(target=work, name=f"defer-after-{invoke.request_id}", daemon=True).start()
