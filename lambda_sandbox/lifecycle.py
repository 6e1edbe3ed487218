"""The sandbox's life from start to stop, whichever mode it runs in.

`Lifecycle` chooses the mode from the configuration (on_demand.py or
managed_instances.py, siblings over host.py that share the phases init_phase.py and
shutdown_phase.py) and owns it: it opens the host's resources, runs the mode's
supervisor thread (init at start, serve until stop, spin down), and closes the host.
What happens in an invoke is the mode's business; this module knows no phase.
"""
from __future__ import annotations

import threading
import traceback
from typing import Protocol

from .config import SandboxConfig
from .host import Host
from .logsink import LogSink
from .managed_instances import ManagedInstances
from .on_demand import OnDemand
from .state import InvokeOutcome, InvokeRequest

__all__ = ["Lifecycle", "Mode"]


class Mode(Protocol):
    """What a mode does for `Lifecycle` (on_demand.OnDemand, managed_instances.ManagedInstances)."""

    def init_at_start(self) -> None:
        """On the supervisor thread, before any invoke is served."""

    def serve(self) -> None:
        """On the supervisor thread until stop; leaves no environment behind."""

    def invoke(self, request: InvokeRequest) -> InvokeOutcome:
        """On the caller's thread: the invoke's response (not waiting for the extensions)."""

    def idle(self) -> bool:
        """No invoke in progress or queued (`cond` held)."""

    def wake(self) -> None:
        """At stop, after `stopping` was set: unblock `serve`."""


class Lifecycle:
    def __init__(self, config: SandboxConfig, sink: LogSink) -> None:
        self.host = Host(config, sink)
        self.mode: Mode = ManagedInstances(self.host) if config.managed else OnDemand(self.host)
        self._thread = threading.Thread(target=self._run, name="lambda_sandbox:lifecycle", daemon=True)
        self.initialised = threading.Event()

    def start(self, runtime_api: str) -> None:
        self.host.open(runtime_api)
        self._thread.start()
        self.host.start_sampling()

    def invoke(self, request: InvokeRequest) -> InvokeOutcome:
        """The invoke's response, as soon as the runtime posted it (not waiting for the extensions)."""
        if self.host.stopping:
            return self.host.stopped_outcome()
        return self.mode.invoke(request)

    def idle(self) -> bool:
        """No invoke running or queued, and the environment frozen or gone (`cond` held)."""
        return self.mode.idle()

    def stop(self, timeout: float = 10.0) -> None:
        with self.host.cond:
            self.host.stopping = True
            self.host.cond.notify_all()
        self.mode.wake()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.mode.init_at_start()
        except Exception:
            self.host.log("lambda_sandbox: init crashed:\n" + traceback.format_exc())
        finally:
            self.initialised.set()
        self.mode.serve()
        self.host.close()
