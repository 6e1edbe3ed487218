"""Post-response work in the function's own process (``defer.after``).

When the handler returns, its ``@defer`` wrapper hands the invoke's callables to a thread
and returns at once; the runtime posts the response and waits in ``next`` without holding
the GIL, so the thread runs while the caller already has its answer. The extension was told
(an ``after`` frame) to wait for this invoke's end marker, which the thread sends when the
work is done: the environment is not frozen under it, up to the invoke's deadline.

Each callable runs in turn; one that raises is logged with its traceback and counted, and
the next one still runs: ``SystemExit`` and ``KeyboardInterrupt`` too (a DB session closed by
a later callable is still closed). On the post-response thread there is nobody to raise such
an exception to (in a thread it would only have ended the thread); run before the response
(no extension), the first one is raised again once every callable ran and the invoke's items
were delivered. A child process a callable forked that ends with ``SystemExit`` ends there: the
invoke's other work, its items and its end are the parent's. What a callable defers belongs
to the same invoke, and is handed over and confirmed with it.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable, Optional

from ._invoke import Invoke

log = logging.getLogger("handler_lib")

#: Makes the calling thread work for an invoke (None: for none), so what it defers is the invoke's.
BindThread = Callable[[Optional[Invoke]], None]


def run_after_work(invoke: Invoke, bind: BindThread) -> Optional[BaseException]:
    """Run the invoke's post-response callables here, now, in order (and those they add);
    return the first ``BaseException`` that is not an ``Exception`` one of them raised."""
    fatal: Optional[BaseException] = None
    pid = os.getpid()
    bind(invoke)
    try:
        while invoke.after:
            fn, args, kwargs = invoke.after.pop(0)
            invoke.after_run += 1
            try:
                fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - one failing callable must not stop the others
                if os.getpid() != pid and not isinstance(exc, Exception):
                    raise  # a child the callable forked exits: the invoke's other work is the parent's
                invoke.after_failed += 1
                log.exception("lambda-defer: post-response work %s raised (request %s)",
                              getattr(fn, "__qualname__", repr(fn)), invoke.request_id)
                if fatal is None and not isinstance(exc, Exception):
                    fatal = exc
    finally:
        bind(None)
    return fatal


def run_after_response(invoke: Invoke, bind: BindThread, end: Callable[[Invoke], None]) -> None:
    """Run the work on a thread of its own and ``end`` the invoke when it is done."""

    def work() -> None:
        pid = os.getpid()
        try:
            run_after_work(invoke, bind)  # a SystemExit is logged and counted: nobody to raise it to
        finally:
            if os.getpid() == pid:  # not in a child forked by the work: its parent ends the invoke
                end(invoke)

    threading.Thread(target=work, name=f"defer-after-{invoke.request_id}", daemon=True).start()
