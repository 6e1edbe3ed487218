"""Run AWS's Runtime Interface Emulator (RIE) outside Docker, with a layer on /opt.

Why: RIE is AWS's own emulator (what `sam local` runs); it hard-codes /opt/extensions, so
each instance runs in a private mount namespace with the layer bind-mounted on /opt. It
also gets a private PID namespace with RIE as PID 1: when RIE exits (or is SIGKILLed),
the kernel kills every runtime/extension process it started, so no orphans survive a
test even though RIE puts each child in its own process group.

Process tree (host view): unshare (our child, ignores SIGTERM, --kill-child)
  -> RIE (PID 1 in the namespace; bash exec'ed into it after the bind mount)
     -> python -m awslambdaric <handler>, /opt/extensions/* (launched on first invoke)
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping

from .waiting import die_with_parent, free_port, port_open, wait_until

__all__ = ["Rie", "find_rie_binary", "write_files", "REPO_ROOT", "INVOKE_PATH"]

REPO_ROOT = Path(__file__).resolve().parents[2]
INVOKE_PATH = "/2015-03-31/functions/function/invocations"

_SCRIPT = 'mount --bind "$1" /opt && shift && exec "$@"'


def find_rie_binary() -> Path | None:
    """The RIE binary: $DEFER_RIE_BIN, else .cache/rie/aws-lambda-rie-<arch> (make rie)."""
    env = os.environ.get("DEFER_RIE_BIN")
    if env:
        return Path(env) if Path(env).is_file() else None
    import platform

    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    path = REPO_ROOT / ".cache" / "rie" / f"aws-lambda-rie-{arch}"
    return path if path.is_file() else None


class Rie:
    """One RIE instance running `python -m awslambdaric <handler>` in `task_dir`.

    `layer_dir` is mounted on /opt (so `layer_dir/extensions/*` are launched, lazily, on
    the first invoke, and `layer_dir/python` is on PYTHONPATH). `env` is added on top of
    the caller's os.environ. `timeout_s` is AWS_LAMBDA_FUNCTION_TIMEOUT (covers runtime
    and extensions, as in Lambda).
    """

    def __init__(self, layer_dir: str | os.PathLike[str], task_dir: str | os.PathLike[str],
                 handler: str, env: Mapping[str, str] | None = None, timeout_s: float = 10,
                 *, python: str | None = None, rie_binary: str | os.PathLike[str] | None = None,
                 log_dir: str | os.PathLike[str] | None = None, log_level: str = "info",
                 memory_mb: int | None = None) -> None:
        self.layer_dir = Path(layer_dir).resolve()
        self.task_dir = Path(task_dir).resolve()
        self.handler = handler
        self.extra_env = dict(env or {})
        self.timeout_s = timeout_s
        self.python = python or sys.executable
        binary = Path(rie_binary) if rie_binary else find_rie_binary()
        if binary is None or not binary.is_file():
            raise FileNotFoundError("RIE binary not found; run `make rie`")
        self.rie_binary = binary.resolve()
        self.log_level = log_level
        self.memory_mb = memory_mb
        self._log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="rie-"))
        self.log_path = self._log_dir / "rie.log"
        self.runtime_port = 0
        self.invoke_port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def invoke_url(self) -> str:
        return f"http://127.0.0.1:{self.invoke_port}{INVOKE_PATH}"

    def environment(self) -> dict[str, str]:
        """The environment RIE (and through it the runtime and extensions) gets."""
        env = dict(os.environ)
        env.update(self.extra_env)
        timeout = self.timeout_s
        env.update({
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(timeout) if float(timeout).is_integer() else timeout),
            "_HANDLER": self.handler,
            "AWS_LAMBDA_FUNCTION_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": str(self.task_dir),
            "PYTHONPATH": f"{self.task_dir}:/opt/python",
            "PYTHONUNBUFFERED": "1",
        })
        if self.memory_mb:
            env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(self.memory_mb)
        # LMI mode is a different emulator (SHUTDOWN-only extensions): never select it by accident.
        env.pop("AWS_LAMBDA_MAX_CONCURRENCY", None)
        # Test-runner variables must not leak into the function.
        for key in ("PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER"):
            env.pop(key, None)
        return env

    def _runtime_command(self) -> list[str]:
        """The runtime's start, through AWS_LAMBDA_EXEC_WRAPPER when set, as the managed
        runtimes' bootstrap (and so `sam local`) runs it."""
        command = [self.python, "-m", "awslambdaric", self.handler]
        wrapper = self.environment().get("AWS_LAMBDA_EXEC_WRAPPER")
        return [wrapper, *command] if wrapper else command

    def start(self, ready_timeout: float = 10.0) -> "Rie":
        """Launch RIE and wait (bounded) until its invoke port accepts connections."""
        if self._proc is not None:
            raise RuntimeError("already started")
        if shutil.which("unshare") is None:
            raise RuntimeError("unshare(1) is required to run RIE with a private /opt")
        self.runtime_port = free_port()
        self.invoke_port = free_port()
        while self.invoke_port == self.runtime_port:
            self.invoke_port = free_port()
        cmd = [
            "unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
            "--mount-proc",
            "bash", "-c", _SCRIPT, "rie-launch", str(self.layer_dir),
            str(self.rie_binary), "--log-level", self.log_level,
            "--runtime-api-address", f"127.0.0.1:{self.runtime_port}",
            "--runtime-interface-emulator-address", f"127.0.0.1:{self.invoke_port}",
            *self._runtime_command(),
        ]
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(cmd, cwd=self.task_dir, env=self.environment(),
                                          stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
        try:
            wait_until(lambda: self._proc is not None and (self._proc.poll() is not None
                                                           or port_open("127.0.0.1", self.invoke_port)),
                       ready_timeout, interval=0.02,
                       message=lambda: f"RIE invoke port {self.invoke_port} not open; logs:\n{self.logs()}")
            if self._proc.poll() is not None:
                raise AssertionError(f"RIE exited with {self._proc.returncode}; logs:\n{self.logs()}")
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> "Rie":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def rie_pid(self) -> int | None:
        """Host PID of RIE itself (the child unshare forked), if it is running."""
        if self._proc is None:
            return None
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
        try:
            pids = children.read_text().split()
        except OSError:
            return None
        return int(pids[0]) if pids else None

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM RIE (extensions get SHUTDOWN, ~2 s), wait bounded, then SIGKILL everything.

        Killing RIE (PID 1 of the namespace) makes the kernel kill all its descendants;
        unshare then exits. Returns unshare's exit code.
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            pid = self.rie_pid()
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pid = self.rie_pid()
                if pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    proc.wait(2)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)  # --kill-child takes the namespace down
                    proc.wait(5)
        self._proc = None
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL RIE at once (no SHUTDOWN): a crashed/reclaimed sandbox."""
        if self._proc is not None and self._proc.poll() is None:
            pid = self.rie_pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            self._proc.wait(5)
        self._proc = None

    # --------------------------------------------------------------------- use
    def invoke(self, payload: Any = None, timeout: float | None = None,
               headers: Mapping[str, str] | None = None) -> tuple[int, bytes, float]:
        """POST `payload` (JSON-encoded unless bytes) to the invoke endpoint.

        Returns (HTTP status, body bytes, elapsed seconds). HTTP errors are returned, not
        raised; a timeout raises. Default timeout: function timeout + 10 s.
        """
        data = payload if isinstance(payload, bytes) else json.dumps(
            {} if payload is None else payload).encode()
        req = urllib.request.Request(self.invoke_url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout_s + 10) as resp:
                body = resp.read()
                return resp.status, body, time.monotonic() - t0
        except urllib.error.HTTPError as err:
            return err.code, err.read(), time.monotonic() - t0

    def invoke_json(self, payload: Any = None, timeout: float | None = None) -> tuple[int, Any, float]:
        """invoke() with the body JSON-decoded (raw text if it is not JSON)."""
        status, body, elapsed = self.invoke(payload, timeout)
        try:
            return status, json.loads(body), elapsed
        except ValueError:
            return status, body.decode(errors="replace"), elapsed

    def logs(self) -> str:
        """Everything RIE, the runtime and the extensions wrote to stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 5.0, count: int = 1) -> str:
        """Wait (bounded) until `text` appears `count` times in the logs; returns the logs."""
        return wait_until(lambda: self.logs() if self.logs().count(text) >= count else "",
                          timeout, interval=0.02,
                          message=lambda: f"{text!r} x{count} not in RIE logs:\n{self.logs()[-4000:]}")


def write_files(root: str | os.PathLike[str], files: Mapping[str, str], *,
                executable: bool = False) -> Path:
    """Write {relative path: text} under `root` (LF endings); returns root as a Path.

    Handy for a task dir (`{"app.py": src}`) or a layer's `extensions/<name>` launcher
    (pass executable=True so RIE can exec it).
    """
    base = Path(root)
    for rel, text in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, newline="\n")
        if executable:
            path.chmod(0o755)
    return base
