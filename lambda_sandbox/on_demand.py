"""The on-demand mode (Lambda as most functions run it): one invoke at a time, frozen
between invokes. The sibling of managed_instances.py over the same host and phases.

The supervisor thread serves invokes one at a time, in arrival order; init runs on the
first invoke (or at start with `init="eager"`, then the environment is frozen) and again
on the first invoke after a reset. The invoke caller is released as soon as the runtime
posts its response (or at the deadline); the supervisor then waits for the runtime and
every extension to call `next`, writes the REPORT and freezes everything with SIGSTOP. A
timeout or a crash resets the environment: SHUTDOWN to the extensions, kill, re-init on
the next invoke.
"""
from __future__ import annotations

import queue
import time
import traceback
from typing import Optional, Tuple

from .errors import ErrorType, error_body
from .events import InvokeEvent, Tracing
from .host import Host
from .init_phase import init_environment
from .metrics import build_report, runtime_done_record
from .shutdown_phase import reset_environment
from .state import Environment, Invocation, InvokeOutcome, InvokeRequest, Phase

__all__ = ["OnDemand"]


class OnDemand:
    def __init__(self, host: Host) -> None:
        self.host = host
        self._busy = False
        self._queue: "queue.Queue[Optional[InvokeRequest]]" = queue.Queue()

    def init_at_start(self) -> None:
        if self.host.config.init == "eager":
            env = init_environment(self.host)
            if env is not None:
                self.host.freeze(env)

    def invoke(self, request: InvokeRequest) -> InvokeOutcome:
        """Queue an invoke for the supervisor and wait for its response (not for the extensions)."""
        self._queue.put(request)
        while not request.done.wait(0.2):
            if self.host.stopped.is_set():  # queued after the supervisor's last drain
                request.complete(self.host.stopped_outcome())
        assert request.outcome is not None
        return request.outcome

    def idle(self) -> bool:
        """No invoke running or queued, and the environment frozen or gone (`cond` held)."""
        return not self._busy and self._queue.empty()

    def wake(self) -> None:
        """Unblock `serve` at stop."""
        self._queue.put(None)

    def serve(self) -> None:
        """The supervisor's loop: serve queued invokes until stop, then spin the environment
        down and answer what is still queued."""
        host = self.host
        while True:
            request = self._queue.get()
            if request is None:
                break
            with host.cond:
                self._busy = True
            try:
                self._serve(request)
            except Exception:
                host.log("lambda_sandbox: invoke crashed:\n" + traceback.format_exc())
                request.complete(InvokeOutcome("", 500, error_body(ErrorType.INTERNAL, "sandbox error")))
                if host.env is not None:
                    reset_environment(host, host.env, "failure")
            finally:
                with host.cond:
                    self._busy = False
                    host.cond.notify_all()
        if host.env is not None:
            reset_environment(host, host.env, "spindown")
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if pending is not None:
                pending.complete(host.stopped_outcome())

    # --- one invoke -----------------------------------------------------------------------
    def _serve(self, request: InvokeRequest, retried: bool = False) -> None:
        host = self.host
        if host.stopping:
            request.complete(host.stopped_outcome())
            return
        if host.env is None and not self._init_for_invoke():
            host.serve_init_failure(request)
            return
        env = host.env
        assert env is not None
        host.thaw(env)
        if env.failure is not None and not retried:  # died while frozen (killed from outside)
            reset_environment(host, env, "failure")
            self._serve(request, retried=True)
            return
        init_ms = None if env.init_reported else env.init_ms
        env.init_reported = True
        inv = Invocation.new(request, host.config.timeout_s)
        self._dispatch(env, inv)
        status, error_type = self._await_invocation(env, inv)
        if status == "stopped":
            request.complete(host.stopped_outcome())
            return
        if status in ("timeout", "failure") and inv.runtime_done_at is None:
            host.emit(env, runtime_done_record(inv, time.monotonic(), status, error_type))
        report = build_report(host.config, env, inv, time.monotonic(), status, error_type, init_ms,
                              host.peak_kb(env), host.cpu_limit)
        host.publish_report(env, inv, report, status, ends_invocation=True)
        if status in ("success", "error"):
            with host.cond:
                env.phase = Phase.READY
            host.freeze(env)
        else:
            reset_environment(host, env, "timeout" if status == "timeout" else "failure")

    def _init_for_invoke(self) -> bool:
        """Init inside an invoke; an init that overran its budget is retried at once as a
        suppressed init (within the function's timeout), as Lambda does, not failed."""
        host = self.host
        if host.last_init_failure[0] != ErrorType.TIMED_OUT and init_environment(host) is not None:
            return True
        if host.stopping or host.last_init_failure[0] != ErrorType.TIMED_OUT:
            return False
        if init_environment(host, phase="invoke") is not None:
            host.last_init_failure = ("", "", None)
            return True
        return False

    def _dispatch(self, env: Environment, inv: Invocation) -> None:
        host = self.host
        tracing = Tracing(inv.request.trace_id) if inv.request.trace_id else None
        event = InvokeEvent(inv.request_id, inv.deadline_ms, host.config.function_arn, tracing)
        with host.cond:
            host.invocation = inv
            env.phase = Phase.INVOKE
            env.runtime_pending = inv
            env.runtime_in_next = False
            for slot in env.extensions:
                if "INVOKE" in slot.events and not slot.exited:
                    slot.deliver(event)
            host.cond.notify_all()
        host.announce_start(env, inv, tracing)

    def _await_invocation(self, env: Environment, inv: Invocation) -> Tuple[str, Optional[str]]:
        """Release the caller at the response; then wait for every `next`. Returns the status."""
        host = self.host
        with host.cond:
            host.wait_until(lambda: inv.response_at is not None or env.failure, inv.deadline)
        if inv.response_at is not None:
            function_error = "Unhandled" if inv.error_type else None
            inv.request.complete(InvokeOutcome(inv.request_id, 200, inv.response_body or b"",
                                               inv.content_type, function_error))
            with host.cond:
                host.wait_until(lambda: env.failure or (env.runtime_in_next and inv.runtime_done_at is not None
                                                        and env.extensions_done()), inv.deadline)
        with host.cond:
            all_done = env.runtime_in_next and inv.runtime_done_at is not None and env.extensions_done()
            failure = env.failure
        if failure is not None:  # a no-op for the caller if the response was already sent
            return host.fail_invoke(inv, failure)
        if all_done:
            return ("error", inv.error_type) if inv.error_type else ("success", None)
        if host.stopping:
            return "stopped", None
        return host.time_out_invoke(inv)
