"""boto3 clients for the sinks, made lazily (boto3 loads after registering, never before)."""

from __future__ import annotations

import threading
from typing import Any

from handler_lib import config as cfg


class ClientFactory:
    """boto3 clients from one session (sessions are not thread-safe; clients are)."""

    def __init__(self, config: cfg.Config) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._session: Any = None

    def __call__(self, service: str) -> Any:
        with self._lock:
            import boto3
            from botocore.config import Config as BotoConfig

            if self._session is None:
                self._session = boto3.session.Session()
            # One quick retry inside botocore for a dropped connection; every other retry is
            # ours, per entry and bounded by the invoke's deadline (botocore's throttle
            # backoff can sleep for seconds inside one call).
            boto_config = BotoConfig(retries={"mode": "standard", "total_max_attempts": 2},
                                     connect_timeout=2, read_timeout=5,
                                     max_pool_connections=max(10, self._config.concurrency))
            return self._session.client(service, config=boto_config)
