"""Reset and shutdown: what Lambda does on a timeout, a crash, or when it reclaims the
environment. The runtime goes first (SIGTERM with 300 ms grace on spindown, SIGKILL on
a reset), buffered telemetry is flushed, then every extension subscribed to SHUTDOWN gets it with the reason and a
deadline 2 s after the start; extensions not subscribed are killed at once; whatever is
left at the deadline is SIGKILLed. A busy extension receives SHUTDOWN on its next `next`.

A phase, shared by both modes and by a failed init; it works on the host only and never
imports a mode or lifecycle.
"""
from __future__ import annotations

import time

from .config import RUNTIME_SIGTERM_GRACE_S
from .events import ShutdownEvent
from .host import Host
from .state import Environment, Phase

__all__ = ["reset_environment"]

#: buffered telemetry is flushed to the subscribers before SHUTDOWN, within this (as RIE's
#: Managed Instances build does), so a listener that exits on SHUTDOWN still gets it
_TELEMETRY_FLUSH_S = 1.0


def _stop_runtime(env: Environment, reason: str) -> None:
    runtime = env.runtime
    if runtime is None or not runtime.alive:
        return
    if reason == "spindown":
        runtime.terminate()
        if not runtime.wait(RUNTIME_SIGTERM_GRACE_S):
            runtime.kill()
    else:
        runtime.kill()
    runtime.wait(1.0)


def reset_environment(host: Host, env: Environment, reason: str) -> None:
    """Shut `env` down for `reason` (spindown, timeout, failure); `host.env` is None after."""
    with host.cond:
        env.phase = Phase.SHUTDOWN
        env.registration_open = False
        host.invocation = None
        host.cond.notify_all()
    if reason != "spindown":
        host.log(f"lambda_sandbox: resetting the environment (reason: {reason})")
    deadline = time.monotonic() + host.config.shutdown_budget_s
    host.thaw(env)
    _stop_runtime(env, reason)
    env.hub.drain(max(0.0, min(_TELEMETRY_FLUSH_S, deadline - time.monotonic())))
    event = ShutdownEvent(int((time.time() + deadline - time.monotonic()) * 1000), reason)
    with host.cond:
        for slot in env.extensions:
            if slot.internal:  # gone with the runtime
                slot.exited = True
            if slot.exited:
                continue
            if "SHUTDOWN" in slot.events:
                slot.deliver(event)
                slot.shutdown_sent = True
            elif slot.process is not None:
                slot.process.kill()
        host.cond.notify_all()
        host.wait_until(lambda: all(s.exited or (s.shutdown_sent and s.in_next) for s in env.extensions),
                        deadline, interruptible=False)
    for proc in env.processes():
        proc.kill()
    for proc in env.processes():
        proc.wait(1.0)
    env.hub.close()
    with host.cond:
        if host.env is env:
            host.env = None
        host.cond.notify_all()
