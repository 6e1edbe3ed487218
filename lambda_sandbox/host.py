"""The host: what both modes (on_demand, managed_instances), both phases (init_phase,
shutdown_phase) and the HTTP APIs share, and nothing that decides when things happen.

It holds the configuration, the log sink, the filesystem and memory cgroup, the current
`Environment` and on-demand invoke under one lock (`cond`), the REPORTs, and the services
they all use: logging and telemetry, spawning processes and noticing their exits,
freezing and thawing an environment's processes (on_demand decides when), the answers
and closing lines of an invoke. It exists so that imports point one way, with no cycle:
lifecycle -> modes -> phases -> host -> leaf modules (state, events, processes, ...).
"""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from .config import SandboxConfig
from .errors import ErrorType, SandboxStartError, error_body
from .events import PlatformStart, Record, RuntimeDone, TelemetryEvent, Tracing
from .filesystem import Filesystem
from .logsink import LogSink
from .cpu import CpuCgroup
from .memory import MemoryCgroup
from .metrics import report_record
from .processes import ManagedProcess
from .report import Report
from .runtime_packages import runtime_dir
from .state import Environment, Invocation, InvokeOutcome, InvokeRequest, Phase

__all__ = ["Host"]

_SAMPLE_INTERVAL_S = 0.02


class Host:
    """The shared state (under `cond`) and services of one sandbox."""

    def __init__(self, config: SandboxConfig, sink: LogSink) -> None:
        self.config = config
        self.sink = sink
        self.runtime_api = ""
        self.fs: Optional[Filesystem] = None
        self.memory: Optional[MemoryCgroup] = None
        self.cpu: Optional[CpuCgroup] = None
        self.cond = threading.Condition()
        self.env: Optional[Environment] = None
        self.invocation: Optional[Invocation] = None  # on-demand: the invoke in progress
        self.reports: List[Report] = []
        self.stopping = False
        self.last_init_failure: Tuple[str, str, Optional[bytes]] = ("", "", None)
        self.stopped = threading.Event()
        self._generation = 0

    # --- resources ------------------------------------------------------------------------
    def open(self, runtime_api: str) -> None:
        """Create the filesystem view and, where there are ones, the memory and CPU cgroups."""
        self.runtime_api = runtime_api
        runtime = () if self.config.allow_host_packages or self.config.runtime != "python" else (runtime_dir(),)
        self.fs = Filesystem(self.config.opt_dir, self.config.task_dir, self.config.env.values(),
                             self.config.share, self.config.namespace, runtime_packages=runtime)
        if self.fs.warning:
            self.log(self.fs.warning)
        try:
            self.fs.choose_user(self.config.unprivileged)
        except SandboxStartError:
            self.fs.remove()
            raise
        if self.fs.user_warning:
            self.log(self.fs.user_warning)
        self.memory = MemoryCgroup.create(self.config.memory_mb) if self.fs.namespaced else None
        if self.memory is None:
            self.log("lambda_sandbox: memory is measured, not enforced (no memory cgroup here)")
        else:
            self.fs.cgroup_procs.append(self.memory.procs)
        self._limit_cpu()

    def _limit_cpu(self) -> None:
        """Lambda's memory-proportional CPU, where `--cpu auto` and the host allow it."""
        assert self.fs is not None
        if self.config.cpu == "off":
            self.log("lambda_sandbox: CPU not limited (--cpu off)")
            return
        shared = self.memory.path if self.memory is not None and self.memory.version == 2 else None
        self.cpu = CpuCgroup.create(self.config.memory_mb, shared) if self.fs.namespaced else None
        if self.cpu is None:
            self.log("lambda_sandbox: CPU not limited (no cpu cgroup here: needs root, a cpu controller "
                     "and a mount namespace)")
            return
        if self.cpu.procs not in self.fs.cgroup_procs:
            self.fs.cgroup_procs.append(self.cpu.procs)
        self.log(f"lambda_sandbox: CPU limited to {self.cpu.describe()} ({self.config.memory_mb} MB; "
                 f"cgroup v{self.cpu.version})")

    @property
    def cpu_limit(self) -> str:
        """REPORT's ``CPU Limit``: the share in force, or "off"."""
        return self.cpu.describe() if self.cpu is not None else "off"

    def start_sampling(self) -> None:
        """Without a cgroup, sample the summed RSS (Max Memory Used) until `close`."""
        threading.Thread(target=self._sample_memory, name="lambda_sandbox:rss", daemon=True).start()

    def close(self) -> None:
        """Remove what `open` created; the sandbox is stopped after this."""
        if self.fs is not None:
            self.fs.remove()
        if self.cpu is not None:
            self.cpu.remove()
        if self.memory is not None:
            self.memory.remove()
        self.stopped.set()

    def next_generation(self) -> int:
        self._generation += 1
        return self._generation

    # --- waiting --------------------------------------------------------------------------
    def wait_until(self, predicate: Callable[[], object], deadline: Optional[float], *,
                   interruptible: bool = True) -> None:
        """Wait on `cond` (held by the caller) for `predicate`, `deadline` or stop."""
        while not predicate() and not (interruptible and self.stopping):
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            self.cond.wait(remaining)

    # --- logs and telemetry ---------------------------------------------------------------
    def log(self, text: str, source: str = "sandbox") -> None:
        self.sink.write(source, text)

    def emit(self, env: Environment, record: Record) -> None:
        if self.config.managed and isinstance(record, RuntimeDone):
            return  # Managed Instances report no runtimeDone (a worker's next `next` says nothing)
        env.hub.emit(TelemetryEvent.of(record))

    def announce_start(self, env: Environment, inv: Invocation, tracing: Optional[Tracing]) -> None:
        """START line and `platform.start`, in both modes."""
        config = self.config
        self.log(f"START RequestId: {inv.request_id} Version: {config.function_version}")
        self.emit(env, PlatformStart(request_id=inv.request_id, version=config.function_version,
                                     function_arn=config.function_arn, tracing=tracing))

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

    # --- answers to the caller ------------------------------------------------------------
    def stopped_outcome(self) -> InvokeOutcome:
        return InvokeOutcome("", 502, error_body(ErrorType.STOPPED, "the sandbox is stopping"))

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

    def serve_init_failure(self, request: InvokeRequest) -> None:
        """Answer an invoke that found no environment because its init failed (as Lambda
        does: the init's error, and START, END and REPORT lines)."""
        if self.stopping:
            request.complete(self.stopped_outcome())
            return
        error_type, message, body = self.last_init_failure
        rid = str(uuid.uuid4())
        request.complete(InvokeOutcome(rid, 200, body or error_body(error_type, message), function_error="Unhandled"))
        report = Report(rid, 0.0, 0, self.config.memory_mb, 0, 0.0, status="error", error_type=error_type,
                        cpu_limit=self.cpu_limit)
        self.log(f"START RequestId: {rid} Version: {self.config.function_version}")
        self.log(f"END RequestId: {rid}")
        self.log(report.line())
        with self.cond:
            self.reports.append(report)
            self.cond.notify_all()

    # --- memory ---------------------------------------------------------------------------
    def peak_kb(self, env: Environment) -> int:
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
    def spawn(self, env: Environment, kind: str, name: str, argv: List[str], cwd: Path,
              env_vars: Dict[str, str]) -> ManagedProcess:
        """A process of `env`, started in `cwd` (a path as the environment sees it)."""
        assert self.fs is not None
        return ManagedProcess(kind, name, self.fs.command(argv, cwd), cwd=self.fs.host_cwd(cwd), env=env_vars,
                              on_line=self._on_line, on_exit=lambda p, c: self._on_exit(env, p, c),
                              user=self.fs.popen_user)

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

    def freeze(self, env: Environment) -> None:
        """SIGSTOP every process of `env` and pause its telemetry (on-demand, between invokes)."""
        env.hub.pause()
        with self.cond:
            env.peak_rss_kb = max(env.peak_rss_kb, env.rss_kb())
            for proc in env.processes():
                proc.freeze()
            for proc in env.processes():
                proc.wait_stopped(0.5)
            env.frozen = True

    def thaw(self, env: Environment) -> None:
        """SIGCONT every process of `env` and resume its telemetry."""
        with self.cond:
            for proc in env.processes():
                proc.thaw()
            env.frozen = False
        env.hub.resume()
