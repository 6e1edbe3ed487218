"""The environment's memory limit: one cgroup for the runtime and the extensions together
(Lambda counts them together against the function's memory size).

As root, with a memory controller the sandbox can give a child cgroup (v2, else v1), every
process joins it before it execs; the kernel's OOM killer then enforces `--memory`, the
sandbox reports the kill as `Runtime.OutOfMemory` and resets, and REPORT's Max Memory Used
is the cgroup's peak. Elsewhere memory is only measured (summed RSS).
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = ["MemoryCgroup", "memory_cgroups_available", "remove_cgroup"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class _Layout:
    version: int
    base: Path
    limit: str
    swap_limit: str
    swap_value: str
    peak: str
    events: str


_LAYOUTS = (
    _Layout(2, Path("/sys/fs/cgroup"), "memory.max", "memory.swap.max", "0", "memory.peak", "memory.events"),
    _Layout(1, Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "",
            "memory.max_usage_in_bytes", "memory.oom_control"),
)


def _has_memory_controller(layout: _Layout) -> bool:
    if layout.version == 1:
        return (layout.base / layout.limit).is_file()
    try:
        return "memory" in (layout.base / "cgroup.controllers").read_text().split()
    except OSError:
        return False


class MemoryCgroup:
    """A cgroup of this sandbox, limited to `limit_mb` (swap included where it can be)."""

    def __init__(self, layout: _Layout, path: Path) -> None:
        self._layout = layout
        self.path = path

    @classmethod
    def create(cls, limit_mb: int) -> Optional["MemoryCgroup"]:
        """The cgroup, or None where the machine does not let the sandbox make one."""
        if os.geteuid() != 0:
            return None
        for layout in _LAYOUTS:
            if not _has_memory_controller(layout):
                continue
            path = layout.base / f"lambda_sandbox-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                path.mkdir()
                (path / layout.limit).write_text(str(limit_mb * _MIB))
            except OSError:
                remove_cgroup(path)
                continue
            group = cls(layout, path)
            group._write(layout.swap_limit, layout.swap_value or str(limit_mb * _MIB))
            return group
        return None

    @property
    def version(self) -> int:
        """1 or 2: a v2 cgroup also carries the CPU limit (cpu.py), a process being in one only."""
        return self._layout.version

    @property
    def procs(self) -> Path:
        """Write a pid here to put that process (and what it starts) in the cgroup."""
        return self.path / "cgroup.procs"

    def _write(self, name: str, value: str) -> bool:
        try:
            (self.path / name).write_text(value)
            return True
        except OSError:  # e.g. no swap accounting, or a kernel without a resettable peak
            return False

    def peak_kb(self) -> int:
        """Peak usage since the last `reset_peak` (0 where the kernel does not say)."""
        try:
            return int((self.path / self._layout.peak).read_text()) // 1024
        except (OSError, ValueError):
            return 0

    def reset_peak(self) -> None:
        self._write(self._layout.peak, "0" if self._layout.version == 1 else "reset")

    def oom_kills(self) -> int:
        """How many processes the OOM killer has killed in this cgroup so far."""
        try:
            for line in (self.path / self._layout.events).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def remove(self) -> None:
        remove_cgroup(self.path)


def remove_cgroup(path: Path, timeout: float = 2.0) -> None:
    """rmdir fails while exiting processes are still counted in the cgroup: retry briefly."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.02)


def memory_cgroups_available() -> bool:
    """Whether a sandbox here would enforce its memory size (makes and removes a cgroup)."""
    group = MemoryCgroup.create(128)
    if group is None:
        return False
    group.remove()
    return True
