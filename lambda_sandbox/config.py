"""Sandbox options and the platform limits they are checked against.

`mode="managed-instances"` emulates Lambda Managed Instances (see managed_instances.py and the README).
`runtime="provided"` runs a custom runtime's `bootstrap` (task root, else layer) instead
of awslambdaric. Init runs on the first invoke (`on-invoke`, as on-demand Lambda does); `eager` runs it
when the sandbox starts, for tests that want a warm environment from the start.
Defaults follow RIE where Lambda has no single answer (function name `test_function`,
account `012345678912`), and Lambda where it does (3 s timeout, 128 MB, 10 s init budget,
2 s SHUTDOWN budget, 6 MiB response limit).
"""
from __future__ import annotations

import os
from importlib.util import find_spec
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

from .cpu import CPU_MODES
from .errors import SandboxConfigError

__all__ = ["SandboxConfig", "MAX_RESPONSE_BYTES", "INIT_BUDGET_S", "SHUTDOWN_BUDGET_S", "MAX_EXTENSIONS",
           "INIT_MODES", "MODES", "DEFAULT_MAX_CONCURRENCY"]

MAX_RESPONSE_BYTES = 6 * 1024 * 1024
INIT_BUDGET_S = 10.0
SHUTDOWN_BUDGET_S = 2.0
RUNTIME_SIGTERM_GRACE_S = 0.3
MAX_EXTENSIONS = 10
INIT_MODES = ("on-invoke", "eager")
#: on-demand: one invoke at a time, frozen between them; managed-instances: Lambda Managed
#: Instances, `max_concurrency` invokes at once, never frozen, extensions get SHUTDOWN only.
MODES = ("on-demand", "managed-instances")
DEFAULT_MAX_CONCURRENCY = 4
RUNTIMES = ("python", "provided")
ACCOUNT_ID = "012345678912"
# Lambda sets these itself; a function cannot configure them (credentials and region stand
# for the execution role and the region, so those come from the caller).
LAMBDA_SET_VARS = frozenset({
    "_HANDLER", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    "AWS_LAMBDA_MAX_CONCURRENCY",
})


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
    init: str = "on-invoke"
    runtime: str = "python"
    isolated_env: bool = False
    share: Tuple[Path, ...] = ()
    namespace: Optional[bool] = None
    mode: str = "on-demand"
    max_concurrency: int = 1
    #: as root, run the function and extensions as Lambda's unprivileged user: None where the
    #: sandbox can (else root, with a WARNING), True or SandboxStartError, False never (as root)
    unprivileged: Optional[bool] = None
    #: the function may import from the sandbox's own interpreter's site-packages (the host's
    #: virtualenv); False (default): only the task root, the layers' python/ and the runtime's
    allow_host_packages: bool = False
    #: memory-proportional CPU (cpu.py): "auto" where a cgroup allows it, "off" never
    cpu: str = "off"

    def __post_init__(self) -> None:
        object.__setattr__(self, "opt_dir", Path(self.opt_dir).resolve())
        object.__setattr__(self, "task_dir", Path(self.task_dir).resolve())
        if not self.task_dir.is_dir():
            raise SandboxConfigError(f"task dir {self.task_dir} is not a directory")
        if not self.opt_dir.is_dir():  # a typo, a layer not built yet, or its .zip: say so here, not at import
            raise SandboxConfigError(f"layer {self.opt_dir} is not a directory (the layer's folder, "
                                     "what lands in /opt: make layer writes dist/layer)")
        if self.runtime not in RUNTIMES:
            raise SandboxConfigError(f"runtime {self.runtime!r} must be one of {', '.join(RUNTIMES)}")
        if self.runtime == "provided" and self.bootstrap is None:
            raise SandboxConfigError(f"no bootstrap in {self.task_dir} or {self.opt_dir}")
        if self.runtime == "python" and find_spec("awslambdaric") is None:
            raise SandboxConfigError("runtime python runs AWS's awslambdaric, which is not installed: "
                                     "pip install 'lambda-defer[sandbox]' (or awslambdaric)")
        if self.runtime == "python" and "." not in self.handler:
            raise SandboxConfigError(f"handler {self.handler!r} must be MODULE.FUNCTION")
        if not 1 <= self.timeout_s <= 900:
            raise SandboxConfigError(f"timeout {self.timeout_s} s is outside Lambda's range 1..900")
        reserved = sorted(set(self.env) & LAMBDA_SET_VARS)
        if reserved:
            raise SandboxConfigError(f"{', '.join(reserved)}: set by Lambda, not by the function's configuration")
        object.__setattr__(self, "share", tuple(Path(p).resolve() for p in self.share))
        if self.init not in INIT_MODES:
            raise SandboxConfigError(f"init {self.init!r} must be one of {', '.join(INIT_MODES)}")
        if self.mode not in MODES:
            raise SandboxConfigError(f"mode {self.mode!r} must be one of {', '.join(MODES)}")
        if not 1 <= self.max_concurrency <= 64:
            raise SandboxConfigError(f"max concurrency {self.max_concurrency} is outside 1..64")
        if self.max_concurrency != 1 and not self.managed:
            raise SandboxConfigError("max concurrency above 1 needs mode managed-instances")
        if self.managed and self.runtime != "python":
            raise SandboxConfigError("mode managed-instances runs awslambdaric's workers: runtime python only")
        if self.cpu not in CPU_MODES:
            raise SandboxConfigError(f"cpu {self.cpu!r} must be one of {', '.join(CPU_MODES)}")
        if not 128 <= self.memory_mb <= 10240:
            raise SandboxConfigError(f"memory {self.memory_mb} MB is outside Lambda's range 128..10240")

    @property
    def managed(self) -> bool:
        """Lambda Managed Instances: concurrent invokes, no freeze, SHUTDOWN-only extensions."""
        return self.mode == "managed-instances"

    @property
    def initialization_type(self) -> str:
        """`AWS_LAMBDA_INITIALIZATION_TYPE` and the init records' `initializationType`."""
        return "lambda-managed-instances" if self.managed else "on-demand"

    @property
    def bootstrap(self) -> Optional[Path]:
        """A custom runtime's `bootstrap`: the task root's, else the layer's (provided.al2023); any
        entry but a directory, as Lambda picks it: one it cannot execute fails init there."""
        for folder in (self.task_dir, self.opt_dir):
            path = folder / "bootstrap"
            if path.is_symlink() or (path.exists() and not path.is_dir()):
                return path
        return None

    @property
    def region(self) -> str:
        environ = {**self.host_environ(), **self.env}
        return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    def host_environ(self) -> Dict[str, str]:
        """The sandbox's own environment (what environment.py passes through from)."""
        return dict(os.environ if self.base_environ is None else self.base_environ)
