"""The Init phase, as Lambda runs it: launch every extension, wait for them to *register*,
then start the runtime; init ends when the runtime and every extension have called
`next`, within the 10 s budget.

A phase, shared by both modes, which decide when it runs (on_demand: inside the first
invoke, or at start and then frozen; managed_instances: at start) and what follows it.
It works on the host only and never imports a mode or lifecycle.
"""
from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Optional

from . import environment
from .config import MAX_EXTENSIONS
from .errors import ErrorType
from .events import InitReport, InitReportMetrics, InitRuntimeDone, InitStart
from .host import Host
from .processes import ManagedProcess
from .shutdown_phase import reset_environment
from .state import Environment, ExtensionSlot, Phase
from .telemetry_delivery import TelemetryHub

__all__ = ["init_environment", "RUNTIME_VERSION"]

#: INIT_START's `Runtime Version` and initStart's `runtimeVersion` (Lambda's look like python:3.12.v18)
RUNTIME_VERSION = f"python:{sys.version_info.major}.{sys.version_info.minor}.sandbox"


def _launch_extensions(host: Host, env: Environment) -> None:
    config, fs = host.config, host.fs
    assert fs is not None
    paths = environment.discover_extensions(config.opt_dir)
    ext_env = environment.extension_env(config, host.runtime_api, fs)
    with host.cond:
        if len(paths) > MAX_EXTENSIONS:
            env.fail(ErrorType.TOO_MANY_EXTENSIONS, f"{len(paths)} extensions, the limit is {MAX_EXTENSIONS}")
            paths = []
        slots = [ExtensionSlot(path.name, host.spawn(env, "extension", path.name,
                                                     [str(fs.opt / "extensions" / path.name)], fs.opt, ext_env))
                 for path in paths]
        env.extensions.extend(slots)
    for slot, path in zip(slots, paths):
        assert slot.process is not None
        problem = _start(host, slot.process, fs.opt / "extensions" / path.name, fs.opt, check=True)
        if problem is not None:  # e.g. a CRLF shebang
            with host.cond:
                slot.exited = True
                env.fail(ErrorType.EXTENSION_LAUNCH_ERROR, f"{slot.name}: {problem}")


def _start(host: Host, process: ManagedProcess, inside: Path, cwd: Path, check: bool) -> Optional[str]:
    """Start `process` (`inside`: its executable as the environment sees it); None if it started,
    else why not, worded as Lambda words it. `check`: first look whether the exec would fail,
    which in the namespace would only show as an exit of the mount script."""
    assert host.fs is not None
    problem = host.fs.launch_problem(inside, cwd) if check else None
    if problem is None:
        try:
            process.start()
        except OSError as exc:
            problem = f"fork/exec {inside}: {(exc.strerror or str(exc)).lower()}"
    return problem


def init_environment(host: Host, phase: str = "init") -> Optional[Environment]:
    """Run Init into a fresh Environment (`host.env`) and return it, ready; None if init
    failed (it is already reset). What follows (a freeze, an invoke) is the mode's choice.
    `phase="invoke"` is Lambda's suppressed init: the retry, inside the invoke and within
    the function's timeout, of an init that overran its 10 s."""
    config = host.config
    env = Environment(host.next_generation(), TelemetryHub(host.log), init_phase=phase)
    if host.memory is not None:
        env.oom_kills = host.memory.oom_kills()
        host.memory.reset_peak()
    with host.cond:
        host.env = env
    # each environment logs to a stream of its own, named as Lambda names them; RIE's Managed
    # Instances build gives that name as initStart's instanceId
    log_stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{config.function_version}]{uuid.uuid4().hex}"
    host.log(f"INIT_START Runtime Version: {RUNTIME_VERSION}")
    host.emit(env, InitStart(initialization_type=config.initialization_type, phase=phase,
                             runtime_version=RUNTIME_VERSION, function_name=config.function_name,
                             function_version=config.function_version, instance_id=log_stream,
                             instance_max_memory=config.memory_mb * 1024 * 1024))
    budget_s = config.init_budget_s if phase == "init" else config.timeout_s
    deadline = env.init_started + budget_s
    _launch_extensions(host, env)
    with host.cond:
        host.wait_until(lambda: env.failure or all(s.ext_id for s in env.extensions), deadline)
        registered = all(s.ext_id for s in env.extensions)
    if registered and env.failure is None and not host.stopping:
        assert host.fs is not None
        runtime_env = environment.runtime_env(config, host.runtime_api, host.fs, log_stream)
        argv = environment.runtime_argv(config, runtime_env, host.fs)
        env.runtime = host.spawn(env, "runtime", "runtime", argv, host.fs.task, runtime_env)
        # Lambda execs a custom runtime's bootstrap itself (a managed runtime's wrapper is exec'd by its script)
        problem = _start(host, env.runtime, Path(argv[0]), host.fs.task, check=config.runtime == "provided")
        if problem is not None:
            host.log(f"RequestId:  Error: {problem} {ErrorType.INVALID_ENTRYPOINT}")
            with host.cond:
                env.fail(ErrorType.INVALID_ENTRYPOINT, f"RequestId:  Error: {problem}")
        with host.cond:
            host.wait_until(lambda: env.failure or (env.runtime_in_next and env.extensions_done()), deadline)
    if host.stopping:
        return None
    with host.cond:
        done = env.failure is None and env.runtime_in_next and env.extensions_done()
        env.init_ms = (time.monotonic() - env.init_started) * 1000
        if done:
            env.phase = Phase.READY
            env.registration_open = False
    if not done:
        _fail_init(host, env, budget_s)
        return None
    host.emit(env, InitReport(metrics=InitReportMetrics(round(env.init_ms, 3)),
                              initialization_type=config.initialization_type, phase=phase))
    env.hub.end_backlog()
    return env


def _fail_init(host: Host, env: Environment, budget: float) -> None:
    waiting = [s.name + (" (internal)" if s.internal else "") for s in env.extensions if not (s.exited or s.in_next)]
    waiting += [] if env.runtime_in_next else ["the runtime"]
    error_type, message = env.failure or (ErrorType.TIMED_OUT, f"Init did not complete within {budget:.0f} s "
                                                               f"(waiting for {', '.join(waiting)})")
    init_ms = env.init_ms or 0.0
    host.log(f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: {env.init_phase}\tStatus: error\t"
             f"Error Type: {error_type}")
    if env.runtime is not None and env.runtime_ready_at is None:  # started, never ready (as RIE reports it)
        host.emit(env, InitRuntimeDone(initialization_type=host.config.initialization_type, phase=env.init_phase,
                                       status="error", error_type=error_type))
    host.emit(env, InitReport(metrics=InitReportMetrics(round(init_ms, 3)),
                              initialization_type=host.config.initialization_type, phase=env.init_phase,
                              status="error", error_type=error_type))
    host.last_init_failure = (error_type, message, env.init_error_body)
    reset_environment(host, env, "failure")
