"""boto3 clients for the sinks, made lazily (boto3 loads after registering, never before)."""

from __future__ import annotations

import os
import threading
from typing import Any, List

from handler_lib import config as cfg

#: The services the sinks call; the only clients a ClientFactory makes.
SERVICES = ("sqs", "sns", "events")


class ClientFactory:
    """boto3 clients from one session (sessions are not thread-safe; clients are)."""

    def __init__(self, config: cfg.Config) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._session: Any = None

    def __call__(self, service: str) -> Any:
        with self._lock:
            from botocore.config import Config as BotoConfig

            if self._session is None:
                self._session = _session()
            # One quick retry inside botocore for a dropped connection; every other retry is
            # ours, per entry and bounded by the invoke's deadline (botocore's throttle
            # backoff can sleep for seconds inside one call).
            boto_config = BotoConfig(retries={"mode": "standard", "total_max_attempts": 2},
                                     connect_timeout=2, read_timeout=5,
                                     max_pool_connections=max(10, self._config.concurrency))
            return self._session.client(service, config=boto_config)


def _session() -> Any:
    """A boto3 session whose data loader knows only SERVICES.

    botocore checks a service name against a scan of every folder of its data (~445 services,
    ~2,900 stat calls, once for the model and once for the endpoint rules): a third of the
    cost of the three clients, paid in the first drain or in init (bench/coldstart.py).
    """
    import boto3
    import botocore.session
    from botocore.loaders import Loader

    class SinkServicesLoader(Loader):
        def list_available_services(self, type_name: str) -> List[str]:
            return list(SERVICES)

    core = botocore.session.get_session()
    data_path = core.get_config_variable("data_path")
    extra = [os.path.expanduser(p) for p in data_path.split(os.pathsep)] if data_path else []
    core.register_component("data_loader", SinkServicesLoader(extra_search_paths=extra))
    return boto3.session.Session(botocore_session=core)
