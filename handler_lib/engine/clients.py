"""botocore clients for the sinks (botocore loads after registering, never before; on demand,
after the first ``next``: see extension/main.py).

botocore directly, not through boto3: boto3 adds nothing to these three clients but its
import (measured here: ~40 ms and ~3 MB of RSS), paid on every cold start.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List

from .. import config as cfg

#: The services the sinks call; the only clients a ClientFactory makes (Lambda serves both
#: async invokes and durable callbacks: one client for the two sinks; S3 holds the payloads
#: of the claim check, DEFER_LARGE_PAYLOAD_BUCKET).
SERVICES = ("sqs", "sns", "events", "lambda", "stepfunctions", "s3")


class ClientFactory:
    """Clients from one botocore session (sessions are not thread-safe; clients are)."""

    def __init__(self, config: cfg.Config) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._session: Any = None
        self._clients: Dict[str, Any] = {}  # one per service, shared by the sinks that call it

    def preload(self) -> None:
        """Import botocore and make the session: what every client needs first (most of the
        cost). A client asked for meanwhile waits for it (the lock), never past the drain's
        stop: the drain leaves a call that has not returned in flight."""
        with self._lock:
            self._ensure_session()

    def _ensure_session(self) -> None:
        if self._session is None:
            import botocore.config  # noqa: F401 - every client's; loaded with the rest

            self._session = _session()

    def __call__(self, service: str) -> Any:
        with self._lock:
            if service in self._clients:
                return self._clients[service]
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
