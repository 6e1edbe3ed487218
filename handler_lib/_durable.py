"""The replay guard for handlers run by the durable execution SDK (aws-durable-execution-sdk-python).

A durable handler runs again from the top each time its execution resumes (a replay): code
outside a step runs once per invocation, and a ``defer.sqs`` there would go out once per
replay. The SDK tells a handler where it stands: its ``DurableContext.is_replaying()`` is
true while the handler re-runs what an earlier invocation already did, and turns false where
the earlier invocations stopped. ``@defer`` (placed under ``@durable_execution``, next to the
function) watches it: an item deferred while it is true is built and checked as usual, then
dropped, since the invocation that first ran that code deferred it. So items deferred outside
a step go out once per execution; a step's body runs only when its result is not
checkpointed, so items deferred inside it go out once per run of the step.
"""

from __future__ import annotations

import warnings
from contextvars import ContextVar, Token
from typing import Any, Callable, Optional

_replaying: ContextVar[Optional[Callable[[], bool]]] = ContextVar("defer_durable_replaying", default=None)
_warned = False


def lambda_context(context: Any) -> Any:
    """The Lambda context: a DurableContext's ``lambda_context``, or the context itself."""
    if callable(getattr(context, "is_replaying", None)):
        inner = getattr(context, "lambda_context", None)
        if inner is not None:
            return inner
    return context


def watch(event: Any, context: Any) -> Optional[Token[Optional[Callable[[], bool]]]]:
    """Follow ``context``'s replay state until :func:`unwatch`, if it is a DurableContext."""
    is_replaying = getattr(context, "is_replaying", None)
    if callable(is_replaying):
        return _replaying.set(is_replaying)
    if (isinstance(event, dict) and "DurableExecutionArn" in event and "CheckpointToken" in event) \
            or hasattr(event, "durable_execution_arn"):  # the service's input, or the SDK runner's
        _warn_outside()
    return None


def unwatch(token: Optional[Token[Optional[Callable[[], bool]]]]) -> None:
    if token is not None:
        _replaying.reset(token)


def replaying() -> bool:
    """Whether the running code re-runs what an earlier invocation of its execution did."""
    is_replaying = _replaying.get()
    return is_replaying is not None and bool(is_replaying())


def _warn_outside() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            "@defer wraps a durable execution handler from outside @durable_execution: it cannot see "
            "replays, so items deferred outside steps go out again on each one; put @defer under "
            "@durable_execution (next to the function)", RuntimeWarning, stacklevel=4)
