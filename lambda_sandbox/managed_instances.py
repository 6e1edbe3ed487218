"""The managed-instances mode (Lambda Managed Instances): many invokes at once, never
frozen, no timeout enforced. The sibling of on_demand.py over the same host and phases.

Init runs at start (an instance is initialised before it takes requests).
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

import threading
import time
from typing import Optional, Tuple

from .events import Tracing
from .host import Host
from .init_phase import init_environment
from .metrics import build_report
from .shutdown_phase import reset_environment
from .state import Environment, Invocation, InvokeOutcome, InvokeRequest

__all__ = ["ManagedInstances"]


class ManagedInstances:
    def __init__(self, host: Host) -> None:
        self.host = host
        self._concurrent = 0  # invokes in progress ...
        self._env_lock = threading.Lock()  # ... of which one at a time re-inits or resets

    def init_at_start(self) -> None:
        init_environment(self.host)  # never frozen

    def serve(self) -> None:
        """The supervisor's part (invokes run on their callers' threads): wait for stop,
        then spin the environment down."""
        host = self.host
        with host.cond:
            host.wait_until(lambda: host.stopping, None)
        if host.env is not None:
            reset_environment(host, host.env, "spindown")

    def wake(self) -> None:
        """Nothing to do: `serve` waits on `cond`, which `stopping` was notified on."""

    def idle(self) -> bool:
        """No invoke in progress (`cond` held)."""
        return not self._concurrent

    def invoke(self, request: InvokeRequest) -> InvokeOutcome:
        """Serve the invoke on the caller's thread, alongside any others."""
        host = self.host
        with host.cond:
            self._concurrent += 1
        try:
            self._serve(request)
        finally:
            with host.cond:
                self._concurrent -= 1
                host.cond.notify_all()
        assert request.outcome is not None
        return request.outcome

    def _serve(self, request: InvokeRequest) -> None:
        host = self.host
        env = self._environment()
        if env is None:
            host.serve_init_failure(request)
            return
        inv = Invocation.new(request, host.config.timeout_s)
        tracing = Tracing(request.trace_id) if request.trace_id else None
        with host.cond:
            env.waiting.append(inv)
            host.cond.notify_all()
        host.announce_start(env, inv, tracing)
        status, error_type = self._await_response(env, inv)
        if status == "stopped":
            request.complete(host.stopped_outcome())
            return
        end = inv.response_at if inv.response_at is not None else time.monotonic()
        report = build_report(host.config, env, inv, end, status, error_type, None, host.peak_kb(env),
                              host.cpu_limit)
        host.publish_report(env, inv, report, status)
        if status == "failure":
            with self._env_lock:
                if host.env is env:
                    reset_environment(host, env, "failure")

    def _environment(self) -> Optional[Environment]:
        """The running environment; a fresh one in place of one that failed between invokes
        (LMI terminates it and routes requests elsewhere). Init runs at start otherwise."""
        host = self.host
        with self._env_lock:
            if host.env is not None and host.env.failure is not None:
                reset_environment(host, host.env, "failure")
            if host.env is None and not host.stopping:
                init_environment(host)
            return host.env

    def _await_response(self, env: Environment, inv: Invocation) -> Tuple[str, Optional[str]]:
        host = self.host
        with host.cond:
            host.wait_until(lambda: inv.response_at is not None or env.failure, inv.deadline)
            failure = env.failure
        if inv.response_at is not None:
            inv.runtime_done_at = inv.response_at  # a worker's next `next` cannot be told apart
            function_error = "Unhandled" if inv.error_type else None
            inv.request.complete(InvokeOutcome(inv.request_id, 200, inv.response_body or b"", inv.content_type,
                                               function_error))
            return ("error", inv.error_type) if inv.error_type else ("success", None)
        if failure is not None:
            return host.fail_invoke(inv, failure)
        if host.stopping:
            return "stopped", None
        return host.time_out_invoke(inv)
