"""The execution environment's life: init, invoke, freeze/thaw, reset and shutdown.

One supervisor thread owns the phases and serves invokes one at a time, in arrival
order (in managed-instances mode invokes run at once on their callers' threads instead:
concurrent_invokes.py); init runs on the first invoke (or at start with `init="eager"`) and again on the
first invoke after a reset. The invoke caller is released as soon as the runtime posts
its response (or at the deadline); the supervisor then waits for the runtime and every extension to call
`next`, writes the REPORT and freezes everything with SIGSTOP. A timeout or a crash
resets the environment: SHUTDOWN to the extensions, kill, re-init on the next invoke.
The HTTP APIs (runtime_api, extensions_api) change the shared state under `cond`.
"""
from __future__ import annotations

import queue
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from .config import SandboxConfig
from .concurrent_invokes import serve_concurrently
from .errors import ErrorType, error_body
from .events import InvokeEvent, PlatformStart, RuntimeDone, TelemetryEvent, Tracing
from .filesystem import Filesystem
from .init_phase import init_environment
from .logsink import LogSink
from .memory import MemoryCgroup
from .metrics import build_report, report_record, runtime_done_record
from .processes import ManagedProcess
from .report import Report
from .shutdown_phase import reset_environment
from .state import Environment, Invocation, InvokeOutcome, InvokeRequest, Phase

__all__ = ["Lifecycle"]

_SAMPLE_INTERVAL_S = 0.02


class Lifecycle:
    def __init__(self, config: SandboxConfig, sink: LogSink) -> None:
        self.config = config
        self.sink = sink
        self.runtime_api = ""
        self.fs: Optional[Filesystem] = None
        self.memory: Optional[MemoryCgroup] = None
        self.cond = threading.Condition()
        self.env: Optional[Environment] = None
        self.invocation: Optional[Invocation] = None
        self.reports: List[Report] = []
        self.stopping = False
        self._generation = 0
        self._busy = False
        self._concurrent = 0  # invokes in progress in managed-instances mode ...
        self.env_lock = threading.Lock()  # ... where one of them at a time re-inits or resets
        self._queue: "queue.Queue[Optional[InvokeRequest]]" = queue.Queue()
        self.last_init_failure: Tuple[str, str, Optional[bytes]] = ("", "", None)
        self._thread = threading.Thread(target=self._run, name="lambda_sandbox:lifecycle", daemon=True)
        self.initialised = threading.Event()
        self.stopped = threading.Event()

    # --- public -------------------------------------------------------------------------
    def start(self, runtime_api: str) -> None:
        self.runtime_api = runtime_api
        self.fs = Filesystem(self.config.opt_dir, self.config.task_dir, self.config.env.values(),
                             self.config.share, self.config.namespace)
        if self.fs.warning:
            self.log(self.fs.warning)
        self.memory = MemoryCgroup.create(self.config.memory_mb) if self.fs.namespaced else None
        if self.memory is None:
            self.log("lambda_sandbox: memory is measured, not enforced (no memory cgroup here)")
        else:
            self.fs.cgroup_procs = self.memory.procs
        self._thread.start()
        threading.Thread(target=self._sample_memory, name="lambda_sandbox:rss", daemon=True).start()

    def invoke(self, request: InvokeRequest) -> InvokeOutcome:
        """Queue an invoke and wait for its response (not for the extensions)."""
        if self.stopping:
            return self._stopped_outcome()
        if self.config.managed:
            with self.cond:
                self._concurrent += 1
            try:
                serve_concurrently(self, request)
            finally:
                with self.cond:
                    self._concurrent -= 1
                    self.cond.notify_all()
            assert request.outcome is not None
            return request.outcome
        self._queue.put(request)
        while not request.done.wait(0.2):
            if self.stopped.is_set():  # queued after the supervisor's last drain
                request.complete(self._stopped_outcome())
        assert request.outcome is not None
        return request.outcome

    def idle(self) -> bool:
        """No invoke running or queued, and the environment frozen or gone (`cond` held)."""
        return not self._busy and not self._concurrent and self._queue.empty()

    def stop(self, timeout: float = 10.0) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def log(self, text: str, source: str = "sandbox") -> None:
        self.sink.write(source, text)

    def emit(self, env: Environment, record: object) -> None:
        if self.config.managed and isinstance(record, RuntimeDone):
            return  # Managed Instances report no runtimeDone (a worker's next `next` says nothing)
        env.hub.emit(TelemetryEvent.of(record))  # type: ignore[arg-type]

    def announce_start(self, env: Environment, inv: Invocation, tracing: Optional[Tracing]) -> None:
        """START line and `platform.start`, in both modes."""
        config = self.config
        self.log(f"START RequestId: {inv.request_id} Version: {config.function_version}")
        self.emit(env, PlatformStart(request_id=inv.request_id, version=config.function_version,
                                     function_arn=config.function_arn, tracing=tracing))

    def wait_until(self, predicate: Callable[[], object], deadline: Optional[float], *,
                   interruptible: bool = True) -> None:
        """Wait on `cond` (held by the caller) for `predicate`, `deadline` or stop."""
        while not predicate() and not (interruptible and self.stopping):
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            self.cond.wait(remaining)

    # --- supervisor -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self.config.managed:  # instances are initialised before they take requests, never frozen
                init_environment(self, freeze=False)
            elif self.config.init == "eager":
                init_environment(self)
        except Exception:
            self.log("lambda_sandbox: init crashed:\n" + traceback.format_exc())
        finally:
            self.initialised.set()
        while True:
            request = self._queue.get()
            if request is None:
                break
            with self.cond:
                self._busy = True
            try:
                self._serve(request)
            except Exception:
                self.log("lambda_sandbox: invoke crashed:\n" + traceback.format_exc())
                request.complete(InvokeOutcome("", 500, error_body(ErrorType.INTERNAL, "sandbox error")))
                if self.env is not None:
                    self.reset(self.env, "failure")
            finally:
                with self.cond:
                    self._busy = False
                    self.cond.notify_all()
        if self.env is not None:
            self.reset(self.env, "spindown")
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if pending is not None:
                pending.complete(self._stopped_outcome())
        if self.fs is not None:
            self.fs.remove()
        if self.memory is not None:
            self.memory.remove()
        self.stopped.set()

    def publish_report(self, env: Environment, inv: Invocation, report: Report, status: str, *,
                       ends_invocation: bool = False) -> None:
        """The invoke's closing lines (timeout notice, END, REPORT) and its platform.report."""
        if status == "timeout":
            self.log(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())} {inv.request_id} "
                     f"Task timed out after {self.config.timeout_s:.2f} seconds")
        self.log(f"END RequestId: {inv.request_id}")
        self.log(report.line())
        self.emit(env, report_record(env, inv, report))
        with self.cond:
            self.reports.append(report)
            if ends_invocation:
                self.invocation = None
            self.cond.notify_all()

    def _stopped_outcome(self) -> InvokeOutcome:
        return InvokeOutcome("", 502, error_body(ErrorType.STOPPED, "the sandbox is stopping"))

    def _peak_kb(self, env: Environment) -> int:
        """The cgroup's peak (function and extensions, as the limit counts them), else the
        highest summed RSS sampled."""
        if self.memory is not None:
            return self.memory.peak_kb()
        env.peak_rss_kb = max(env.peak_rss_kb, env.rss_kb())
        return env.peak_rss_kb

    def _sample_memory(self) -> None:
        if self.memory is not None:
            return
        while not self.stopped.wait(_SAMPLE_INTERVAL_S):
            env = self.env
            if env is not None and not env.frozen:
                env.peak_rss_kb = max(env.peak_rss_kb, env.rss_kb())

    # --- processes ------------------------------------------------------------------------
    def _on_line(self, proc: ManagedProcess, line: str) -> None:
        source = "function" if proc.kind == "runtime" else proc.name
        self.log(line, source)
        env = self.env
        if env is not None:
            kind = "function" if proc.kind == "runtime" else "extension"
            env.hub.emit(TelemetryEvent.of(line, log_type=kind))

    def _on_exit(self, env: Environment, proc: ManagedProcess, code: int) -> None:
        with self.cond:
            slot = next((s for s in env.extensions if s.process is proc), None)
            if slot is not None:
                slot.exited = True
            if env is self.env and env.phase is not Phase.SHUTDOWN:
                rid = self.invocation.request_id if self.invocation else ""
                if self.memory is not None and self.memory.oom_kills() > env.oom_kills:  # runtime or extension
                    message = f"RequestId: {rid} Error: Runtime exited with error: signal: killed"
                    env.fail(ErrorType.OUT_OF_MEMORY, message)
                    self.log(f"{message} Runtime.OutOfMemory ({proc.name} killed by the OOM killer at "
                             f"{self.config.memory_mb} MB)")
                elif slot is not None:  # after exit/error it is an ExitError (as RIE says), else a crash
                    kind = ErrorType.EXTENSION_EXIT_ERROR if slot.error_type else ErrorType.EXTENSION_CRASH
                    detail = f" ({slot.error_type})" if slot.error_type else ""
                    env.fail(kind, f"extension {slot.name} exited with code {code}{detail}")
                    self.log(f"RequestId: {rid} Error: exit code {code} {kind} ({slot.name})")
                else:
                    env.fail(ErrorType.RUNTIME_EXIT, f"RequestId: {rid} Error: Runtime exited with error: exit status {code}")
                    self.log(f"RequestId: {rid} Error: Runtime exited with error: exit status {code} Runtime.ExitError")
            self.cond.notify_all()

    def spawn(self, env: Environment, kind: str, name: str, argv: List[str], cwd: Path,
              env_vars: Dict[str, str]) -> ManagedProcess:
        """A process of `env`, started in `cwd` (a path as the environment sees it)."""
        assert self.fs is not None
        return ManagedProcess(kind, name, self.fs.command(argv, cwd), cwd=self.fs.host_cwd(cwd), env=env_vars,
                              on_line=self._on_line, on_exit=lambda p, c: self._on_exit(env, p, c))

    def freeze(self, env: Environment) -> None:
        env.hub.pause()
        with self.cond:
            env.peak_rss_kb = max(env.peak_rss_kb, env.rss_kb())
            for proc in env.processes():
                proc.freeze()
            for proc in env.processes():
                proc.wait_stopped(0.5)
            env.frozen = True

    def thaw(self, env: Environment) -> None:
        with self.cond:
            for proc in env.processes():
                proc.thaw()
            env.frozen = False
        env.hub.resume()

    # --- invoke ---------------------------------------------------------------------------
    def _serve(self, request: InvokeRequest, retried: bool = False) -> None:
        if self.stopping:
            request.complete(self._stopped_outcome())
            return
        if self.env is None and not self._init_for_invoke():
            self._serve_init_failure(request)
            return
        env = self.env
        assert env is not None
        self.thaw(env)
        if env.failure is not None and not retried:  # died while frozen (killed from outside)
            self.reset(env, "failure")
            self._serve(request, retried=True)
            return
        init_ms = None if env.init_reported else env.init_ms
        env.init_reported = True
        inv = Invocation.new(request, self.config.timeout_s)
        self._dispatch(env, inv)
        status, error_type = self._await_invocation(env, inv)
        if status == "stopped":
            request.complete(self._stopped_outcome())
            return
        if status in ("timeout", "failure") and inv.runtime_done_at is None:
            self.emit(env, runtime_done_record(inv, time.monotonic(), status, error_type))
        report = build_report(self.config, env, inv, time.monotonic(), status, error_type, init_ms,
                              self._peak_kb(env))
        self.publish_report(env, inv, report, status, ends_invocation=True)
        if status in ("success", "error"):
            with self.cond:
                env.phase = Phase.READY
            self.freeze(env)
        else:
            self.reset(env, "timeout" if status == "timeout" else "failure")

    def _init_for_invoke(self) -> bool:
        """Init inside an invoke; an init that overran its budget is retried at once as a
        suppressed init (within the function's timeout), as Lambda does, not failed."""
        if self.last_init_failure[0] != ErrorType.TIMED_OUT and init_environment(self, freeze=False):
            return True
        if self.stopping or self.last_init_failure[0] != ErrorType.TIMED_OUT:
            return False
        if init_environment(self, freeze=False, phase="invoke"):
            self.last_init_failure = ("", "", None)
            return True
        return False

    def _serve_init_failure(self, request: InvokeRequest) -> None:
        if self.stopping:
            request.complete(self._stopped_outcome())
            return
        error_type, message, body = self.last_init_failure
        rid = str(uuid.uuid4())
        request.complete(InvokeOutcome(rid, 200, body or error_body(error_type, message), function_error="Unhandled"))
        report = Report(rid, 0.0, 0, self.config.memory_mb, 0, 0.0, status="error", error_type=error_type)
        self.log(f"START RequestId: {rid} Version: {self.config.function_version}")
        self.log(f"END RequestId: {rid}")
        self.log(report.line())
        with self.cond:
            self.reports.append(report)
            self.cond.notify_all()

    def _dispatch(self, env: Environment, inv: Invocation) -> None:
        tracing = Tracing(inv.request.trace_id) if inv.request.trace_id else None
        event = InvokeEvent(inv.request_id, inv.deadline_ms, self.config.function_arn, tracing)
        with self.cond:
            self.invocation = inv
            env.phase = Phase.INVOKE
            env.runtime_pending = inv
            env.runtime_in_next = False
            for slot in env.extensions:
                if "INVOKE" in slot.events and not slot.exited:
                    slot.deliver(event)
            self.cond.notify_all()
        self.announce_start(env, inv, tracing)

    def _await_invocation(self, env: Environment, inv: Invocation) -> Tuple[str, Optional[str]]:
        """Release the caller at the response; then wait for every `next`. Returns the status."""
        with self.cond:
            self.wait_until(lambda: inv.response_at is not None or env.failure, inv.deadline)
        if inv.response_at is not None:
            function_error = "Unhandled" if inv.error_type else None
            inv.request.complete(InvokeOutcome(inv.request_id, 200, inv.response_body or b"",
                                               inv.content_type, function_error))
            with self.cond:
                self.wait_until(lambda: env.failure or (env.runtime_in_next and inv.runtime_done_at is not None
                                                        and env.extensions_done()), inv.deadline)
        with self.cond:
            all_done = env.runtime_in_next and inv.runtime_done_at is not None and env.extensions_done()
            failure = env.failure
        if failure is not None:  # a no-op for the caller if the response was already sent
            return self.fail_invoke(inv, failure)
        if all_done:
            return ("error", inv.error_type) if inv.error_type else ("success", None)
        if self.stopping:
            return "stopped", None
        return self.time_out_invoke(inv)

    def fail_invoke(self, inv: Invocation, failure: Tuple[str, str]) -> Tuple[str, Optional[str]]:
        """Answer the caller with the environment's failure (a no-op once it was answered)."""
        inv.request.complete(InvokeOutcome(inv.request_id, 200, error_body(failure[0], failure[1]),
                                           function_error="Unhandled"))
        return "failure", failure[0]

    def time_out_invoke(self, inv: Invocation) -> Tuple[str, Optional[str]]:
        """Answer the caller as Lambda does when the function's timeout passed."""
        message = f"RequestId: {inv.request_id} Error: Task timed out after {self.config.timeout_s:.2f} seconds"
        inv.request.complete(InvokeOutcome(inv.request_id, 200, error_body(ErrorType.TIMED_OUT, message),
                                           function_error="Unhandled"))
        return "timeout", ErrorType.TIMED_OUT

    # --- phases (init_phase.py, shutdown_phase.py) ------------------------------------------
    def next_generation(self) -> int:
        self._generation += 1
        return self._generation

    def reset(self, env: Environment, reason: str) -> None:
        reset_environment(self, env, reason)
