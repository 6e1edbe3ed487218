"""Sandbox options and the platform limits they are checked against.

Defaults follow RIE where Lambda has no single answer (function name `test_function`,
account `012345678912`), and Lambda where it does (3 s timeout, 128 MB, 10 s init budget,
2 s SHUTDOWN budget, 6 MiB response limit).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional

from .errors import SandboxConfigError

__all__ = ["SandboxConfig", "MAX_RESPONSE_BYTES", "INIT_BUDGET_S", "SHUTDOWN_BUDGET_S", "MAX_EXTENSIONS"]

MAX_RESPONSE_BYTES = 6 * 1024 * 1024
INIT_BUDGET_S = 10.0
SHUTDOWN_BUDGET_S = 2.0
RUNTIME_SIGTERM_GRACE_S = 0.3
MAX_EXTENSIONS = 10
ACCOUNT_ID = "012345678912"


@dataclass(frozen=True)
class SandboxConfig:
    """Everything one sandbox needs; `env` holds the function's configured variables."""

    opt_dir: Path
    task_dir: Path
    handler: str
    timeout_s: float = 3.0
    memory_mb: int = 128
    env: Mapping[str, str] = field(default_factory=dict)
    port: int = 8080
    runtime_api_port: int = 0
    function_name: str = "test_function"
    function_version: str = "$LATEST"
    init_budget_s: float = INIT_BUDGET_S
    shutdown_budget_s: float = SHUTDOWN_BUDGET_S
    base_environ: Optional[Mapping[str, str]] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "opt_dir", Path(self.opt_dir).resolve())
        object.__setattr__(self, "task_dir", Path(self.task_dir).resolve())
        if not self.task_dir.is_dir():
            raise SandboxConfigError(f"task dir {self.task_dir} is not a directory")
        if "." not in self.handler:
            raise SandboxConfigError(f"handler {self.handler!r} must be MODULE.FUNCTION")
        if not 1 <= self.timeout_s <= 900:
            raise SandboxConfigError(f"timeout {self.timeout_s} s is outside Lambda's range 1..900")
        if not 128 <= self.memory_mb <= 10240:
            raise SandboxConfigError(f"memory {self.memory_mb} MB is outside Lambda's range 128..10240")

    @property
    def region(self) -> str:
        environ = self.environ()
        return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    def environ(self) -> Dict[str, str]:
        """The sandbox's own environment (passed through) overlaid with the function's."""
        base = dict(os.environ if self.base_environ is None else self.base_environ)
        base.update(self.env)
        return base
