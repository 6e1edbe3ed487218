"""The runtime posting an invoke's response, seen from the function's own process.

Under awslambdaric (AWS's Python runtime interface client: what RIE and ``sam local`` run
here, and AWS's Python base images) the response of each invoke, or its error, is posted by
the runtime client's ``post_invocation_result`` / ``post_invocation_error``, which take the
invoke's request id first. When a ``@defer`` handler is defined, both are wrapped so that
the dispatcher hears of each post once it is made: an invoke whose ``@defer`` handler was
never called (an outer decorator answered or raised without calling it) has no end marker
of its own, and this is when it ends.

Guarded: only when awslambdaric's runtime client is already loaded (this process runs under
it; nothing is imported here), and only when each method has the expected shape (a plain
function whose first argument after ``self`` is ``invoke_id``); otherwise nothing is
changed. A failure of the callback never reaches the runtime. A leaf: it calls back the
function it is given.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable, List, Tuple

RUNTIME_CLIENT_MODULE = "awslambdaric.lambda_runtime_client"
POSTS = ("post_invocation_result", "post_invocation_error")
#: Set on the wrappers: a class already wrapped is not wrapped again.
WRAPPED = "__lambda_defer_posted__"

#: Called with the request id once the runtime has posted that invoke's response or error.
Posted = Callable[[str], None]

log = logging.getLogger("handler_lib")


def _takes_invoke_id(fn: Any) -> bool:
    """A plain function called as ``fn(self, invoke_id, ...)``, the request id without a default."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    names = code.co_varnames[:code.co_argcount]
    return len(names) >= 2 and names[1] == "invoke_id" and len(fn.__defaults__ or ()) <= len(names) - 2


def install(posted: Posted) -> bool:
    """Wrap the runtime client's posts so ``posted(request_id)`` follows each; True when they
    are wrapped (now or before), False when this process is not run by a runtime of the
    expected shape (nothing changed)."""
    module = sys.modules.get(RUNTIME_CLIENT_MODULE)
    if module is None:
        return False
    found: List[Tuple[type, str, Any]] = []
    for cls in list(vars(module).values()):
        if not isinstance(cls, type) or cls.__module__ != RUNTIME_CLIENT_MODULE:
            continue
        for name in POSTS:
            fn = vars(cls).get(name)
            if fn is None:
                continue
            if not getattr(fn, WRAPPED, False) and not _takes_invoke_id(fn):
                return False  # not the shape this was written against: change nothing
            found.append((cls, name, fn))
    if {name for _, name, _ in found} != set(POSTS):
        return False
    for cls, name, fn in found:
        if not getattr(fn, WRAPPED, False):
            setattr(cls, name, _after_post(fn, posted))
    return True


def _after_post(post: Callable[..., Any], posted: Posted) -> Callable[..., Any]:
    @functools.wraps(post)
    def post_then_tell(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return post(self, *args, **kwargs)
        finally:
            request_id = args[0] if args else kwargs.get("invoke_id")
            if isinstance(request_id, str) and request_id:
                try:
                    posted(request_id)
                except Exception:  # noqa: BLE001 - the runtime's loop must go on whatever happens here
                    log.debug("lambda-defer: the end of invoke %s could not be reported", request_id,
                              exc_info=True)

    setattr(post_then_tell, WRAPPED, True)
    return post_then_tell
