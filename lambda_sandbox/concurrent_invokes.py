"""Invokes on Lambda Managed Instances: many at once, never frozen, no timeout enforced.

Each invoke is served on its caller's thread: it waits in `env.waiting` until a runtime
worker's `next` takes it (awslambdaric >= 4 forks `AWS_LAMBDA_MAX_CONCURRENCY` workers, so
that many long polls are open), and ends when that worker posts its response. Extensions
have no part in it (they get SHUTDOWN only), so the REPORT has no post-runtime time. At the
timeout the caller is told the invoke timed out, but nothing is killed or reset: the
worker goes on and its late response is accepted and dropped, as on LMI. A crash of the
runtime or an extension terminates the environment (failure, reset): the invokes in it fail,
and the next invoke initialises a new one. A worker that dies alone is not noticed (its
parent, awslambdaric's main process, waits for every worker): its invoke times out.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Optional, Tuple

from .events import Tracing
from .init_phase import init_environment
from .metrics import build_report
from .state import Environment, Invocation, InvokeOutcome, InvokeRequest

if TYPE_CHECKING:
    from .lifecycle import Lifecycle

__all__ = ["serve_concurrently"]

def serve_concurrently(lc: "Lifecycle", request: InvokeRequest) -> None:
    env = _environment(lc)
    if env is None:
        lc._serve_init_failure(request)
        return
    inv = Invocation.new(request, lc.config.timeout_s)
    tracing = Tracing(request.trace_id) if request.trace_id else None
    with lc.cond:
        env.waiting.append(inv)
        lc.cond.notify_all()
    lc.announce_start(env, inv, tracing)
    status, error_type = _await_response(lc, env, inv)
    if status == "stopped":
        request.complete(lc._stopped_outcome())
        return
    end = inv.response_at if inv.response_at is not None else time.monotonic()
    report = build_report(lc.config, env, inv, end, status, error_type, None, lc._peak_kb(env))
    lc.publish_report(env, inv, report, status)
    if status == "failure":
        with lc.env_lock:
            if lc.env is env:
                lc.reset(env, "failure")


def _environment(lc: "Lifecycle") -> Optional[Environment]:
    """The running environment; a fresh one in place of one that failed between invokes
    (LMI terminates it and routes requests elsewhere). Init runs at start otherwise."""
    with lc.env_lock:
        if lc.env is not None and lc.env.failure is not None:
            lc.reset(lc.env, "failure")
        if lc.env is None and not lc.stopping:
            init_environment(lc, freeze=False)
        return lc.env


def _await_response(lc: "Lifecycle", env: Environment, inv: Invocation) -> Tuple[str, Optional[str]]:
    with lc.cond:
        lc.wait_until(lambda: inv.response_at is not None or env.failure, inv.deadline)
        failure = env.failure
    if inv.response_at is not None:
        inv.runtime_done_at = inv.response_at  # a worker's next `next` cannot be told apart
        function_error = "Unhandled" if inv.error_type else None
        inv.request.complete(InvokeOutcome(inv.request_id, 200, inv.response_body or b"", inv.content_type,
                                           function_error))
        return ("error", inv.error_type) if inv.error_type else ("success", None)
    if failure is not None:
        return lc.fail_invoke(inv, failure)
    if lc.stopping:
        return "stopped", None
    return lc.time_out_invoke(inv)
