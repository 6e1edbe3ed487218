"""Child processes of the sandbox: spawn in their own process group, forward output,
freeze/thaw with SIGSTOP/SIGCONT, kill, and measure resident memory.

Each runtime or extension is a session leader, so one `killpg` reaches everything it
started (a bash wrapper and the python it runs), which is what freezing needs.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Mapping, Optional, Sequence

from .users import SandboxUser

__all__ = ["ManagedProcess", "rss_kb"]

LineSink = Callable[["ManagedProcess", str], None]
ExitSink = Callable[["ManagedProcess", int], None]


class ManagedProcess:
    """One runtime or extension process and its process group."""

    def __init__(self, kind: str, name: str, argv: Sequence[str], *, cwd: Path,
                 env: Mapping[str, str], on_line: LineSink, on_exit: ExitSink,
                 user: Optional[SandboxUser] = None) -> None:
        self.kind = kind
        self.name = name
        self._argv = list(argv)
        self._cwd = cwd
        self._env = dict(env)
        self._on_line = on_line
        self._on_exit = on_exit
        self._user = user  # started as this user (setuid in the child), else as the sandbox
        self._popen: Optional[subprocess.Popen[bytes]] = None
        self._exited = threading.Event()
        self.returncode: Optional[int] = None

    def start(self) -> None:
        user = self._user
        self._popen = subprocess.Popen(
            self._argv, cwd=str(self._cwd), env=self._env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            user=user.uid if user else None, group=user.gid if user else None, extra_groups=[] if user else None,
        )
        threading.Thread(target=self._pump, name=f"out:{self.name}", daemon=True).start()
        threading.Thread(target=self._wait, name=f"wait:{self.name}", daemon=True).start()

    @property
    def pid(self) -> int:
        assert self._popen is not None, "process not started"
        return self._popen.pid

    @property
    def alive(self) -> bool:
        return self._popen is not None and not self._exited.is_set()

    def _pump(self) -> None:
        assert self._popen is not None and self._popen.stdout is not None
        for raw in iter(self._popen.stdout.readline, b""):
            self._on_line(self, raw.decode("utf-8", "replace").rstrip("\r\n"))
        self._popen.stdout.close()

    def _wait(self) -> None:
        assert self._popen is not None
        code = self._popen.wait()
        self.returncode = code
        self._exited.set()
        self._on_exit(self, code)

    def wait(self, timeout: float) -> bool:
        """True once the process has exited (bounded by `timeout`); one never started has nothing to wait for."""
        return self._popen is None or self._exited.wait(timeout)

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the process group and to every descendant (one that left the
        group with setsid is still ours); vanished processes are not an error."""
        if self._popen is None:
            return
        descendants = self.group_pids() if self.alive else []
        try:
            os.killpg(self._popen.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in descendants[1:]:
            try:
                os.kill(pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def freeze(self) -> None:
        self.signal_group(signal.SIGSTOP)

    def thaw(self) -> None:
        self.signal_group(signal.SIGCONT)

    def terminate(self) -> None:
        self.signal_group(signal.SIGTERM)

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)

    def wait_stopped(self, timeout: float) -> bool:
        """SIGSTOP is asynchronous: wait until every live process of the group shows state T."""
        deadline = time.monotonic() + timeout
        while True:
            states = [_state(pid) for pid in self.group_pids()]
            if all(state in ("T", "t", "Z", "X", "") for state in states):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)

    def group_pids(self) -> List[int]:
        """The leader and its live descendants."""
        if self._popen is None:
            return []
        return list(_descendants(self._popen.pid))

    def rss_kb(self) -> int:
        return sum(rss_kb(pid) for pid in self.group_pids())


def _descendants(pid: int) -> Iterator[int]:
    stack = [pid]
    seen = set()
    while stack:
        current = stack.pop()
        if current in seen or not os.path.exists(f"/proc/{current}"):
            continue
        seen.add(current)
        yield current
        try:
            tids = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as handle:
                    stack.extend(int(child) for child in handle.read().split())
            except OSError:
                continue


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def rss_kb(pid: int) -> int:
    """VmRSS of `pid` in KiB, 0 if it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
