"""The state of one execution environment, shared under the host's lock (`Host.cond`).

An `Environment` lives from init to reset; a reset throws it away whole, so ids and
requests from processes of an older environment can never match the new one.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Deque, Dict, FrozenSet, List, Optional, Tuple

from .events import ExtensionEvent
from .processes import ManagedProcess
from .telemetry_delivery import TelemetryHub

__all__ = ["Phase", "ExtensionSlot", "Environment", "Invocation", "InvokeRequest", "InvokeOutcome"]


class Phase(str, Enum):
    INIT = "init"
    READY = "ready"        # initialised; frozen between invokes
    INVOKE = "invoke"
    SHUTDOWN = "shutdown"  # reset or stop in progress: exits are expected


@dataclass
class ExtensionSlot:
    """A launched extension, or an internal one (a thread of the runtime: no process of its
    own, no SHUTDOWN); `in_next` is true while it waits in `/event/next` with nothing
    pending, i.e. it is done with the current phase."""

    name: str
    process: Optional[ManagedProcess]
    ext_id: Optional[str] = None
    events: FrozenSet[str] = frozenset()
    in_next: bool = False
    pending: Deque[ExtensionEvent] = field(default_factory=deque)
    error_type: Optional[str] = None
    shutdown_sent: bool = False
    exited: bool = False
    next_at: float = 0.0

    @property
    def internal(self) -> bool:
        return self.process is None

    def deliver(self, event: ExtensionEvent) -> None:
        self.pending.append(event)
        self.in_next = False


@dataclass
class InvokeRequest:
    """One call of the invoke endpoint, queued until the environment is free."""

    payload: bytes
    trace_id: Optional[str] = None
    client_context: Optional[str] = None
    cognito_identity: Optional[str] = None
    tenant_id: Optional[str] = None  # X-Amz-Tenant-Id: the tenant, under tenant isolation
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Optional["InvokeOutcome"] = None

    def complete(self, outcome: "InvokeOutcome") -> None:
        if not self.done.is_set():
            self.outcome = outcome
            self.done.set()


@dataclass(frozen=True)
class InvokeOutcome:
    """What the invoke caller gets: `function_error` is set for X-Amz-Function-Error."""

    request_id: str
    status: int
    body: bytes
    content_type: str = "application/json"
    function_error: Optional[str] = None


@dataclass
class Invocation:
    request_id: str
    request: InvokeRequest
    deadline_ms: int
    deadline: float
    started: float = field(default_factory=time.monotonic)
    started_epoch: float = field(default_factory=time.time)
    delivered_at: Optional[float] = None
    response_at: Optional[float] = None
    response_body: Optional[bytes] = None
    content_type: str = "application/json"
    error_type: Optional[str] = None
    runtime_done_at: Optional[float] = None

    @classmethod
    def new(cls, request: InvokeRequest, timeout_s: float) -> "Invocation":
        now_epoch = time.time()
        return cls(request_id=str(uuid.uuid4()), request=request,
                   deadline_ms=int((now_epoch + timeout_s) * 1000), deadline=time.monotonic() + timeout_s,
                   started_epoch=now_epoch)

    def epoch(self, at: float) -> float:
        """Wall-clock time of monotonic instant `at`."""
        return self.started_epoch + (at - self.started)


@dataclass
class Environment:
    generation: int
    hub: TelemetryHub
    phase: Phase = Phase.INIT
    extensions: List[ExtensionSlot] = field(default_factory=list)
    runtime: Optional[ManagedProcess] = None
    runtime_in_next: bool = False
    runtime_pending: Optional[Invocation] = None
    runtime_ready_at: Optional[float] = None
    registration_open: bool = True
    failure: Optional[Tuple[str, str]] = None
    init_error_body: Optional[bytes] = None
    init_started: float = field(default_factory=time.monotonic)
    init_ms: Optional[float] = None
    init_phase: str = "init"  # "invoke" for a suppressed init
    init_reported: bool = False
    peak_rss_kb: int = 0
    oom_kills: int = 0  # the memory cgroup's count when this environment started
    frozen: bool = False
    # managed-instances mode: invokes waiting for a worker's `next`, and those a worker holds
    waiting: Deque[Invocation] = field(default_factory=deque)
    active: Dict[str, Invocation] = field(default_factory=dict)

    def slot_by_id(self, ext_id: str) -> Optional[ExtensionSlot]:
        return next((s for s in self.extensions if s.ext_id == ext_id), None)

    def slot_by_name(self, name: str) -> Optional[ExtensionSlot]:
        return next((s for s in self.extensions if s.name == name), None)

    def processes(self) -> List[ManagedProcess]:
        procs = [s.process for s in self.extensions if s.process is not None]
        if self.runtime is not None:
            procs.append(self.runtime)
        return procs

    def fail(self, error_type: str, message: str) -> None:
        """Record the first failure; later ones are consequences."""
        if self.failure is None:
            self.failure = (error_type, message)

    def extensions_done(self) -> bool:
        return all(s.exited or s.in_next for s in self.extensions)

    def rss_kb(self) -> int:
        return sum(p.rss_kb() for p in self.processes() if p.alive)
