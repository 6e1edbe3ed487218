"""What the runtime and the extensions see: argv, cwd and environment, as in Lambda.

Extensions get the function's variables without the runtime-only ones
(`LAMBDA_TASK_ROOT`, `_HANDLER`, `AWS_EXECUTION_ENV`, ...), as documented.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, List

from .config import SandboxConfig

__all__ = ["runtime_env", "extension_env", "runtime_argv", "discover_extensions", "RUNTIME_ONLY_VARS"]

RUNTIME_ONLY_VARS = frozenset({
    "LAMBDA_TASK_ROOT", "_HANDLER", "AWS_EXECUTION_ENV", "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME", "LAMBDA_RUNTIME_DIR", "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_PORT", "_X_AMZN_TRACE_ID",
})


def _common_env(config: SandboxConfig, runtime_api: str) -> Dict[str, str]:
    env = config.environ()
    env.update({
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": config.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": config.function_version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", config.region),
    })
    return env


def runtime_env(config: SandboxConfig, runtime_api: str) -> Dict[str, str]:
    """The function's environment; `PYTHONPATH` puts the task dir first, then `opt/python`."""
    env = _common_env(config, runtime_api)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    opt_python = config.opt_dir / "python"
    paths = [str(config.task_dir), str(opt_python / "lib" / f"python{version}" / "site-packages"), str(opt_python)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env.update({
        "LAMBDA_TASK_ROOT": str(config.task_dir),
        "_HANDLER": config.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "lambda_sandbox/[$LATEST]local",
        "PYTHONPATH": os.pathsep.join(paths),
    })
    return env


def extension_env(config: SandboxConfig, runtime_api: str) -> Dict[str, str]:
    env = _common_env(config, runtime_api)
    return {k: v for k, v in env.items() if k not in RUNTIME_ONLY_VARS}


def runtime_argv(config: SandboxConfig) -> List[str]:
    """The real awslambdaric, under the sandbox's own interpreter."""
    return [sys.executable, "-m", "awslambdaric", config.handler]


def discover_extensions(opt_dir: Path) -> List[Path]:
    """Every executable regular file in `opt/extensions`, in name order."""
    folder = opt_dir / "extensions"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and os.access(p, os.X_OK))
