"""The sinks' AWS clients: the lean transport where it can, botocore otherwise (clients load
after registering, never before; on demand, after the first ``next``: see extension/main.py).

``DEFER_TRANSPORT=auto`` (the default): SQS, SNS and EventBridge go through
``engine.transport`` when the environment lets it give the same answers as botocore (the
environment's or the container's credentials, no profile, config file or proxy, an endpoint
whose rules it knows); per service, anything else is botocore's. Lambda, Step Functions and
S3 are always botocore's, which loads only when an item needs one of them: an extension that
delivers only SQS, SNS and EventBridge items never imports it. ``DEFER_TRANSPORT=botocore``:
botocore for everything. Why: docs/performance.md ("The lean transport").

botocore directly, not through boto3: boto3 adds nothing to these clients but its import
(measured here: ~40 ms and ~3 MB of RSS), paid on every cold start.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, Mapping, Optional

from .. import config as cfg

#: The services the sinks call; the only clients a ClientFactory makes (Lambda serves both
#: async invokes and durable callbacks: one client for the two sinks; S3 holds the payloads
#: of the claim check, DEFER_LARGE_PAYLOAD_BUCKET).
SERVICES = ("sqs", "sns", "events", "lambda", "stepfunctions", "s3")


class ClientFactory:
    """One client per service, lean or from one botocore session (sessions are not
    thread-safe; clients are). ``environ`` is for tests (default: ``os.environ``, read once,
    when the first client or the preload needs it)."""

    def __init__(self, config: cfg.Config, environ: Optional[Mapping[str, str]] = None) -> None:
        self._config = config
        self._environ = environ
        self._lock = threading.Lock()
        self._session: Any = None
        self._lean: Any = None  # transport.clients.LeanTransport, once decided
        self._lean_decided = False
        self._clients: Dict[str, Any] = {}  # one per service, shared by the sinks that call it

    def preload(self) -> None:
        """What every client needs first, made before a drain needs it: the lean transport's
        TLS context and credentials (the container endpoint's fetch); where no service can be
        lean, botocore and its session (most of botocore's cost). A client asked for meanwhile
        waits for it (the lock), never past the drain's stop: the drain leaves a call that has
        not returned in flight."""
        with self._lock:
            lean = self._lean_transport()
            if lean is not None:
                lean.warm()
            else:
                self._ensure_session()

    def botocore_loaded(self) -> bool:
        """Whether this factory has loaded botocore (its session)."""
        return self._session is not None

    def uses_botocore(self, service: str) -> bool:
        """Whether ``service``'s client is (or would be) botocore's."""
        with self._lock:
            if service not in self._clients:
                lean = self._lean_client(service)
                if lean is None:
                    return True
                self._clients[service] = lean
            return not getattr(self._clients[service], "lean", False)

    def _lean_transport(self) -> Any:
        """The environment's lean transport, or None (``DEFER_TRANSPORT=botocore``, or an
        environment only botocore reads: see transport.clients.LeanTransport.from_environ)."""
        if not self._lean_decided:
            self._lean_decided = True
            if self._config.transport == "auto":
                from .transport.clients import LeanTransport

                environ = os.environ if self._environ is None else self._environ
                self._lean = LeanTransport.from_environ(environ, max(10, self._config.concurrency))
        return self._lean

    def _lean_client(self, service: str) -> Any:
        """``service``'s lean client, or None (a service, environment or endpoint it leaves to botocore)."""
        lean = self._lean_transport()
        return None if lean is None else lean.client(service)

    def _ensure_session(self) -> None:
        if self._session is None:
            import botocore.config  # noqa: F401 - every client's; loaded with the rest

            self._session = _session()

    def __call__(self, service: str) -> Any:
        with self._lock:
            if service in self._clients:
                return self._clients[service]
            lean = self._lean_client(service)
            if lean is not None:
                self._clients[service] = lean
                return lean
            from botocore.config import Config as BotoConfig

            self._ensure_session()
            # One quick retry inside botocore for a dropped connection; every other retry is
            # ours, per entry and bounded by the invoke's deadline (botocore's throttle
            # backoff can sleep for seconds inside one call).
            boto_config = BotoConfig(retries={"mode": "standard", "total_max_attempts": 2},
                                     connect_timeout=2, read_timeout=5,
                                     max_pool_connections=max(10, self._config.concurrency))
            client = self._clients[service] = self._session.create_client(service, config=boto_config)
            return client


def _session() -> Any:
    """A botocore session whose data loader knows only SERVICES.

    botocore checks a service name against a scan of every folder of its data (~445 services,
    ~2,900 stat calls, once for the model and once for the endpoint rules): a third of the
    cost of the three clients, paid in the first drain or in init (bench/coldstart.py).
    """
    import botocore.session
    from botocore.loaders import Loader

    class SinkServicesLoader(Loader):
        def list_available_services(self, type_name: str) -> List[str]:
            return list(SERVICES)

    session = botocore.session.get_session()
    data_path = session.get_config_variable("data_path")
    extra = [os.path.expanduser(p) for p in data_path.split(os.pathsep)] if data_path else []
    session.register_component("data_loader", SinkServicesLoader(extra_search_paths=extra))
    return session
