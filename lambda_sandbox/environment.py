"""What the runtime and the extensions see: argv, cwd and environment, as in Lambda.

The environment is Lambda's documented one (reserved and unreserved variables) built
from the configuration; Lambda's variables always take Lambda's values. The sandbox's
own environment passes through (tests hand endpoints, queue URLs and DEFER_* settings
this way) except host-only variables (HOME, SHELL, PIP_*, VIRTUAL_ENV, the host PATH...),
which Lambda never has; `isolated` passes only the configured variables and the AWS
credentials, region and endpoint. The sandbox's interpreter directory stands in for
/var/lang/bin. Extensions get the same without the runtime-only variables
(`LAMBDA_TASK_ROOT`, `_HANDLER`, `AWS_EXECUTION_ENV`, ...), as documented.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, List, Mapping

from .config import SandboxConfig
from .filesystem import Filesystem
from .runtime_packages import runtime_dir

__all__ = ["runtime_env", "extension_env", "runtime_argv", "discover_extensions", "RUNTIME_ONLY_VARS",
           "HOST_ONLY_VARS", "HOST_ONLY_PREFIXES"]

RUNTIME_ONLY_VARS = frozenset({
    "LAMBDA_TASK_ROOT", "_HANDLER", "AWS_EXECUTION_ENV", "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME", "LAMBDA_RUNTIME_DIR", "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_PORT", "_X_AMZN_TRACE_ID",
})
HOST_ONLY_VARS = frozenset({
    "HOME", "PWD", "OLDPWD", "SHELL", "USER", "LOGNAME", "TERM", "COLORTERM", "LS_COLORS", "MAIL", "HOSTNAME",
    "SHLVL", "DISPLAY", "_", "VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "PYTHONHOME", "PYTHONSTARTUP",
    "PYTHONUSERBASE", "PYTHONPATH", "PATH", "LD_LIBRARY_PATH", "LD_PRELOAD", "TMPDIR",
    "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER",
})
HOST_ONLY_PREFIXES = ("PIP_", "SSH_", "XDG_")
_ISOLATED_PASS = frozenset({
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
})


def _host_vars(config: SandboxConfig) -> Dict[str, str]:
    base = config.host_environ()
    if config.isolated_env:
        return {k: v for k, v in base.items() if k in _ISOLATED_PASS or k.startswith("AWS_ENDPOINT_URL_")}
    return {k: v for k, v in base.items() if k not in HOST_ONLY_VARS and not k.startswith(HOST_ONLY_PREFIXES)}


def _common_env(config: SandboxConfig, runtime_api: str, fs: Filesystem) -> Dict[str, str]:
    env = _host_vars(config)
    env.update(config.env)
    lang_bin = os.path.dirname(sys.executable)
    task, opt = fs.task, fs.opt
    env.update({
        "PATH": f"{lang_bin}:/usr/local/bin:/usr/bin/:/bin:{opt}/bin",
        "LD_LIBRARY_PATH": f"{sys.base_prefix}/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
                           f"{task}:{task}/lib:{opt}/lib",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": config.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": config.function_version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_INITIALIZATION_TYPE": config.initialization_type,
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", config.region),
        **fs.env(),
    })
    return env


def runtime_env(config: SandboxConfig, runtime_api: str, fs: Filesystem, log_stream: str) -> Dict[str, str]:
    """The function's environment (`log_stream`: the environment's own); `PYTHONPATH` puts the task
    root first, then the layer's python (a custom runtime gets neither PYTHONPATH nor
    AWS_EXECUTION_ENV, as on provided.al2023)."""
    env = _common_env(config, runtime_api, fs)
    env.update({
        "LAMBDA_TASK_ROOT": str(fs.task),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_HANDLER": config.handler,
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
    })
    if config.managed:  # awslambdaric >= 4 forks this many workers, each with its own /next
        env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(config.max_concurrency)
    if config.runtime == "provided":
        return env
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    opt_python = fs.opt / "python"
    paths = [str(fs.task), str(opt_python / "lib" / f"python{version}" / "site-packages"), str(opt_python)]
    if config.env.get("PYTHONPATH"):
        paths.append(config.env["PYTHONPATH"])
    if not config.allow_host_packages:  # after the function's own, as the runtime's site-packages on Lambda
        paths.append(str(runtime_dir()))
    env.update({"AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}", "PYTHONPATH": os.pathsep.join(paths)})
    return env


def extension_env(config: SandboxConfig, runtime_api: str, fs: Filesystem) -> Dict[str, str]:
    env = _common_env(config, runtime_api, fs)
    if config.env.get("PYTHONPATH"):
        env["PYTHONPATH"] = config.env["PYTHONPATH"]
    return {k: v for k, v in env.items() if k not in RUNTIME_ONLY_VARS}


def runtime_argv(config: SandboxConfig, env: Mapping[str, str], fs: Filesystem) -> List[str]:
    """The real awslambdaric under the sandbox's own interpreter, started through
    `AWS_LAMBDA_EXEC_WRAPPER` when set, as the managed runtimes' bootstrap does; or a
    custom runtime's bootstrap (which Lambda starts without the wrapper)."""
    bootstrap = config.bootstrap
    if config.runtime == "provided" and bootstrap is not None:
        return [str(fs.task / "bootstrap" if bootstrap.parent == config.task_dir else fs.opt / "bootstrap")]
    # -S: none of the interpreter's site-packages (the host's virtualenv); the runtime's own
    # packages come from PYTHONPATH (runtime_packages), unless the host's are allowed
    no_site = [] if config.allow_host_packages else ["-S"]
    argv = [sys.executable, *no_site, "-m", "awslambdaric", config.handler]
    wrapper = env.get("AWS_LAMBDA_EXEC_WRAPPER")
    return [wrapper, *argv] if wrapper else argv


def discover_extensions(opt_dir: Path) -> List[Path]:
    """Every entry of `opt/extensions` but directories, in name order: Lambda (and RIE) launch
    each, so a file without its executable bit fails init (Extension.LaunchError) there too."""
    folder = opt_dir / "extensions"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_symlink() or not p.is_dir())
