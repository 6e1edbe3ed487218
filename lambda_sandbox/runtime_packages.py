"""The packages Lambda's Python runtime brings, installed once into a cache folder.

On Lambda a function imports from its task root, the layers' `python/`, and the runtime's
own site-packages (awslambdaric and the AWS SDK, boto3), in that order: nothing of the
developer's machine. The sandbox gives the function the same view: it starts the runtime's
interpreter without its site-packages (`-S`) and puts this folder last on `PYTHONPATH`, so
a dependency missing from the function's zip fails here as it fails there. The folder is
built with `pip install --target` on first use and reused after (keyed by the pins and the
interpreter's version); `allow_host_packages` (`--allow-host-packages`) keeps the host's
virtualenv visible instead.

boto3's version on Lambda depends on the runtime version and the region (AWS's
"Runtime-included SDK versions"); `BOTO3_VERSION` is a pinned stand-in for it, so a test
does not change behaviour when PyPI publishes a new boto3. A function that needs a newer
one ships it in its zip, as on Lambda.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Tuple

from .config import SandboxConfig
from .errors import SandboxStartError

__all__ = ["BOTO3_VERSION", "AWSLAMBDARIC_VERSION", "RUNTIME_PINS", "runtime_dir", "ensure_runtime_packages",
           "describe", "prepare_runtime_packages"]

#: the SDK the runtime bundles (a stand-in: the real one moves with the runtime's version)
BOTO3_VERSION = "1.44.8"
#: the runtime interface client, as the [sandbox] extra pins it
AWSLAMBDARIC_VERSION = "4.2.2"
#: everything the folder holds, transitive dependencies included: a new release on PyPI
#: changes nothing here (tests/sandbox/test_host_packages.py checks the folder holds exactly these)
RUNTIME_PINS: Tuple[str, ...] = (
    f"awslambdaric=={AWSLAMBDARIC_VERSION}", "simplejson==4.3.0", "snapshot-restore-py==1.0.0",
    f"boto3=={BOTO3_VERSION}", f"botocore=={BOTO3_VERSION}", "s3transfer==0.19.3", "jmespath==1.1.0",
    "python-dateutil==2.9.0.post0", "six==1.17.0", "urllib3==2.8.0",
)
_CACHE_ENV = "LAMBDA_SANDBOX_RUNTIME_CACHE"
_DONE = ".complete"
_INSTALL_TIMEOUT_S = 600


def _cache_root() -> Path:
    """`LAMBDA_SANDBOX_RUNTIME_CACHE`, else `.cache/` of the checkout the sandbox runs from,
    else beside the interpreter. The sandbox shows it to uid 993 wherever it lies (filesystem.py)."""
    configured = os.environ.get(_CACHE_ENV)
    if configured:
        return Path(configured)
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout / ".cache" / "lambda-runtime"
    return Path(sys.prefix) / "lambda-runtime"


def runtime_dir() -> Path:
    """The folder for this interpreter's version and the current pins (may not exist yet)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    key = hashlib.sha256("\n".join(RUNTIME_PINS).encode()).hexdigest()[:12]
    return _cache_root() / f"{version}-{key}"


def describe(allow_host_packages: bool) -> str:
    """The line the sandbox logs at start: which packages the function can import."""
    if allow_host_packages:
        return (f"lambda_sandbox: packages: the host's ({sys.prefix}) are visible to the function "
                "(--allow-host-packages); on Lambda only its zip, its layers and the runtime's are")
    return (f"lambda_sandbox: packages: task root, layers' python/, runtime (awslambdaric=={AWSLAMBDARIC_VERSION}, "
            f"boto3=={BOTO3_VERSION}: {runtime_dir()}); --allow-host-packages to see the host's")


def ensure_runtime_packages() -> Path:
    """The runtime's folder, installed with pip on first use (one process at a time)."""
    target = runtime_dir()
    if (target / _DONE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel test worker may be installing the same folder
        if not (target / _DONE).exists():
            _install(target)
    return target


def _install(target: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
           "--only-binary=:all:", "--target", str(staging), *RUNTIME_PINS]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise SandboxStartError(f"cannot install the runtime's packages ({' '.join(RUNTIME_PINS)}): {exc}") from exc
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise SandboxStartError(f"cannot install the runtime's packages ({' '.join(RUNTIME_PINS)}) into "
                                f"{target}: pip exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts with the host's shebang
    for path in (staging, *staging.rglob("*")):  # readable by Lambda's user (uid 993), as /var/lang is
        path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
    (staging / _DONE).write_text("\n".join(RUNTIME_PINS) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def prepare_runtime_packages(config: SandboxConfig, log: Callable[[str], None]) -> None:
    """At start, before any init (whose 10 s budget a first install would eat): install the
    runtime's folder where the function needs it, and log which packages are in force."""
    if config.runtime != "python":
        return  # a custom runtime brings its own
    if not config.allow_host_packages:
        ensure_runtime_packages()
    log(describe(config.allow_host_packages))
