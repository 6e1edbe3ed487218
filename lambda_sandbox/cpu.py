"""Memory-proportional CPU: Lambda gives a function CPU in proportion to its memory size
(1,769 MB is one vCPU), so a 512 MB function gets about 0.29 of a core.

As root, with a cpu controller the sandbox can give a child cgroup (v2 ``cpu.max``, else v1
``cpu.cfs_quota_us``), every process of the environment joins it before it execs and the
kernel's CFS bandwidth control holds them, together, to that share of each 20 ms period
(the interval at which public measurements see Lambda pause a busy function; a longer period
would let a short invoke run unthrottled). Without one the environment runs at the host's
speed; REPORT's ``CPU Limit`` says which is in force.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from .memory import remove_cgroup

__all__ = ["CPU_MODES", "MB_PER_VCPU", "CpuCgroup", "cpu_cgroups_available", "vcpus_for"]

#: Lambda: "at 1,769 MB, a function has the equivalent of one vCPU" (proportional below and above).
MB_PER_VCPU = 1769
CPU_MODES = ("auto", "off")
_PERIOD_US = 20_000
_MIN_QUOTA_US = 1_000  # the kernel's floor for a CFS quota


def vcpus_for(memory_mb: int) -> float:
    """The share of a CPU Lambda gives a function of `memory_mb`."""
    return memory_mb / MB_PER_VCPU


def _quota_us(memory_mb: int) -> int:
    return max(_MIN_QUOTA_US, round(vcpus_for(memory_mb) * _PERIOD_US))


@dataclass(frozen=True)
class _Layout:
    version: int
    base: Path


_V2 = _Layout(2, Path("/sys/fs/cgroup"))
_V1 = (_Layout(1, Path("/sys/fs/cgroup/cpu")), _Layout(1, Path("/sys/fs/cgroup/cpu,cpuacct")))


def _v2_has_cpu() -> bool:
    try:
        return "cpu" in (_V2.base / "cgroup.controllers").read_text().split()
    except OSError:
        return False


class CpuCgroup:
    """A cgroup whose processes share `vcpus` of CPU time (CFS bandwidth control)."""

    def __init__(self, version: int, path: Path, vcpus: float, owned: bool) -> None:
        self.version = version
        self.path = path
        self.vcpus = vcpus
        self._owned = owned  # False: the memory cgroup's own (v2), removed with it

    @classmethod
    def create(cls, memory_mb: int, v2_group: Optional[Path] = None) -> Optional["CpuCgroup"]:
        """The cgroup, or None where the machine does not let the sandbox limit CPU.

        `v2_group`: the sandbox's v2 memory cgroup, if it has one: a process is in one v2
        cgroup only, so the limit goes on that one rather than on a second group."""
        if os.geteuid() != 0:
            return None
        quota, vcpus = _quota_us(memory_mb), vcpus_for(memory_mb)
        if _v2_has_cpu():
            group = _v2_group(v2_group, quota)
            if group is not None:
                return cls(2, group[0], vcpus, group[1])
        for layout in _V1:
            if not (layout.base / "cpu.cfs_quota_us").is_file():
                continue
            path = layout.base / f"lambda_sandbox-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                path.mkdir()
                (path / "cpu.cfs_period_us").write_text(str(_PERIOD_US))
                (path / "cpu.cfs_quota_us").write_text(str(quota))
            except OSError:
                remove_cgroup(path)
                continue
            return cls(1, path, vcpus, True)
        return None

    @property
    def procs(self) -> Path:
        """Write a pid here to put that process (and what it starts) in the cgroup."""
        return self.path / "cgroup.procs"

    def describe(self) -> str:
        """What REPORT's ``CPU Limit`` field says."""
        return f"{self.vcpus:.3f} vCPU"

    def remove(self) -> None:
        if self._owned:
            remove_cgroup(self.path)


def _v2_group(shared: Optional[Path], quota: int) -> Optional[Tuple[Path, bool]]:
    """Set ``cpu.max`` on the memory cgroup, else on a new child: (path, made here)."""
    try:
        (_V2.base / "cgroup.subtree_control").write_text("+cpu")
    except OSError:
        pass  # already on, or refused: the write of cpu.max below says which
    owned = shared is None
    path = shared or _V2.base / f"lambda_sandbox-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        if owned:
            path.mkdir()
        (path / "cpu.max").write_text(f"{quota} {_PERIOD_US}")
    except OSError:
        if owned:
            remove_cgroup(path)
        return None
    return path, owned


def cpu_cgroups_available() -> bool:
    """Whether a sandbox here would limit its CPU (makes and removes a cgroup)."""
    group = CpuCgroup.create(MB_PER_VCPU)
    if group is None:
        return False
    group.remove()
    return True
