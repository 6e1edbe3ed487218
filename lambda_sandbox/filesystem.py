"""The environment's filesystem, as Lambda lays it out: the layer at /opt, the task root
read-only at /var/task, a private writable /tmp, and `sandbox.localdomain` in /etc/hosts.

As root (where `unshare -m` works) each runtime and extension process starts in its own
private mount namespace with the same bind mounts, so they all see one /tmp: a directory
the sandbox creates, which survives resets (as Lambda's does) and is removed with the
sandbox. Host directories under /tmp that the function is handed (a path in one of its
configured variables, or `share`) stay visible at their own path, read-write, so a test
can read what the function wrote there.

Elsewhere (not root, no unshare) the processes see the host's filesystem as before, with
TMPDIR pointed at the private directory; the sandbox says so in a WARNING.
"""
from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path, PurePath, PurePosixPath
from typing import Dict, Iterable, List, Optional, Sequence

__all__ = ["Filesystem", "namespaces_available", "shared_dirs", "OPT", "TASK_ROOT"]

OPT = Path("/opt")
TASK_ROOT = Path("/var/task")
_HOST_TMP = Path("/tmp")
_HOSTS_LINE = "127.0.0.1\tsandbox.localdomain sandbox\n"
_LAMBDA_MACHINES = frozenset({62, 183})  # EM_X86_64, EM_AARCH64
_MAX_LINKS = 40  # the kernel's limit on links in one lookup
_TMP_PATH = re.compile(r"(?<![\w.])/+tmp(?:/[^\s;,'\"]*)?")


@functools.lru_cache(maxsize=1)
def namespaces_available() -> bool:
    """Root, `unshare` on PATH, and a private mount namespace can actually be made here."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-m", "--propagation", "private", "true"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.lru_cache(maxsize=1)
def _host_machine() -> bytes:
    """e_machine of this interpreter's ELF header: the architecture the environment runs on."""
    with open("/proc/self/exe", "rb") as handle:
        return handle.read(20)[18:20]


def _other_architecture(elf_head: bytes) -> bool:
    """Built for the other Lambda architecture (x86_64 or arm64): execve refuses it (ENOEXEC)."""
    machine = elf_head[18:20]
    return int.from_bytes(machine, "little") in _LAMBDA_MACHINES and machine != _host_machine()


def _under_tmp(path: Path) -> bool:
    return path != _HOST_TMP and _HOST_TMP in path.parents


def _link_targets(root: Path) -> List[Path]:
    """Where symlinks in a layer or task folder (two levels deep) point: the processes follow them."""
    targets: List[Path] = []
    for entry in [*root.glob("*"), *root.glob("*/*")]:
        if entry.is_symlink():
            target = Path(os.path.realpath(entry))
            targets.append(target if target.is_dir() else target.parent)
    return targets


def shared_dirs(values: Iterable[str], extra: Iterable[Path]) -> List[Path]:
    """Host directories under /tmp to keep visible: for every /tmp path named in `values`
    (also inside a URL such as sqlite:////tmp/x/db), its nearest existing directory."""
    found: List[Path] = []
    candidates = [Path(os.path.normpath(m.group(0).replace("//", "/"))) for v in values for m in _TMP_PATH.finditer(v)]
    for path in [*candidates, *extra]:
        path = Path(os.path.realpath(path))
        while not path.is_dir() and _under_tmp(path):
            path = path.parent
        if _under_tmp(path):
            found.append(path)
    kept = [p for p in found if not any(q in p.parents for q in found)]
    return sorted(set(kept))


class Filesystem:
    """One sandbox's private /tmp and, where it can, the mount namespace around it."""

    def __init__(self, opt_dir: Path, task_dir: Path, env_values: Iterable[str], share: Sequence[Path] = (),
                 namespace: Optional[bool] = None) -> None:
        self.opt_dir = opt_dir
        self.task_dir = task_dir
        self.namespaced = namespaces_available() if namespace is None else namespace and namespaces_available()
        self.cgroup_procs: Optional[Path] = None
        self.root = Path(tempfile.mkdtemp(prefix="lambda_sandbox-"))
        self.tmp = self.root / "tmp"
        self.tmp.mkdir()
        self.tmp.chmod(0o1777)
        interpreter = [Path(sys.prefix), Path(sys.base_prefix)]
        self.shared = shared_dirs(env_values, [*share, *interpreter, *_link_targets(opt_dir), *_link_targets(task_dir)])

    # --- what the processes see -------------------------------------------------------------
    @property
    def opt(self) -> Path:
        """Where the processes find the layer."""
        return OPT if self.namespaced else self.opt_dir

    @property
    def task(self) -> Path:
        """LAMBDA_TASK_ROOT as the processes see it."""
        return TASK_ROOT if self.namespaced else self.task_dir

    def env(self) -> Dict[str, str]:
        """Variables the layout needs: TMPDIR where /tmp cannot be private."""
        return {} if self.namespaced else {"TMPDIR": str(self.tmp)}

    def command(self, argv: Sequence[str], cwd: Path) -> List[str]:
        """`argv` started in `cwd` (a path as the processes see it) inside the layout."""
        if not self.namespaced:
            return list(argv)
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", self._mount_script(), "lambda_sandbox",
                str(cwd), *argv]

    def host_cwd(self, cwd: Path) -> Path:
        """A directory that exists on the host to start the process in (it then `cd`s)."""
        return self.root if self.namespaced else cwd

    def host_path(self, inside: str) -> Path:
        """Where a path the processes see lies on the host."""
        path = Path(inside)
        if not self.namespaced:
            return path
        for seen, host in ((OPT, self.opt_dir), (TASK_ROOT, self.task_dir)):
            if path == seen or seen in path.parents:
                return host / path.relative_to(seen)
        if _under_tmp(path) and not any(path == d or d in path.parents for d in self.shared):
            return self.tmp / path.relative_to(_HOST_TMP)
        return path

    def resolve(self, inside: PurePath) -> Path:
        """The host file that absolute path `inside` names for the processes, its symlinks
        followed as they see them: an absolute link in the layer points into /opt, not into
        the host's /opt."""
        pending = list(reversed(PurePosixPath(inside).parts[1:]))
        current = PurePosixPath("/")
        links = 0
        while pending:
            part = pending.pop()
            candidate = current.parent if part == ".." else current / part
            host = self.host_path(str(candidate))
            if links < _MAX_LINKS and host.is_symlink():
                links += 1
                target = PurePosixPath(os.readlink(host))
                pending.extend(reversed(target.parts[1:] if target.is_absolute() else target.parts))
                current = PurePosixPath("/") if target.is_absolute() else current
            else:
                current = candidate
        return self.host_path(str(current))

    def launch_problem(self, inside: PurePath, cwd: PurePath) -> Optional[str]:
        """Why exec of `inside` (as the processes see it, started in `cwd`) would fail, worded
        as Lambda words it; None if it would start. In the namespace the exec happens after
        the mount script has started, so a failure there would look like a crash."""
        executable = self.resolve(inside)
        if not executable.exists():
            return f"fork/exec {inside}: no such file or directory"
        if executable.is_dir() or not os.access(executable, os.X_OK):
            return f"fork/exec {inside}: permission denied"
        try:
            with open(executable, "rb") as handle:
                head = handle.read(256)
        except OSError:
            return None  # unreadable to us (not root): only the exec can tell
        if head.startswith(b"#!"):
            line = head[2:].split(b"\n", 1)[0].lstrip(b" \t")
            name = re.split(rb"[ \t]", line, maxsplit=1)[0]  # a CR stays in the name, as for execve
            interpreter = self.resolve(cwd / name.decode("utf-8", "surrogateescape")) if name else None
            if interpreter is None or not interpreter.exists():
                return f"fork/exec {inside}: no such file or directory"
            if interpreter.is_dir() or not os.access(interpreter, os.X_OK):
                return f"fork/exec {inside}: permission denied"
        elif not head.startswith(b"\x7fELF") or _other_architecture(head):
            return f"fork/exec {inside}: exec format error"
        return None

    @property
    def warning(self) -> Optional[str]:
        if self.namespaced:
            return None
        return ("lambda_sandbox: WARNING: no private mount namespace (needs root and unshare): the function and "
                f"extensions see the host's filesystem; /tmp is not private (TMPDIR={self.tmp}), the layer is "
                f"not at /opt ({self.opt_dir}), the task root is writable, and sandbox.localdomain resolves "
                "only where the host resolves it")

    # --- set-up and removal -----------------------------------------------------------------
    def _mount_script(self) -> str:
        """Join the memory cgroup (if any), mount, cd, exec: the process is set up before its code runs."""
        hosts = self.root / "hosts"
        if not hosts.exists():
            try:
                original = Path("/etc/hosts").read_text()
            except OSError:
                original = "127.0.0.1\tlocalhost\n"
            hosts.write_text(original.rstrip("\n") + "\n" + _HOSTS_LINE)
            TASK_ROOT.mkdir(parents=True, exist_ok=True)
        q = shlex.quote
        lines = ["set -e"]
        if self.cgroup_procs is not None:
            lines.append(f"echo $$ > {q(str(self.cgroup_procs))}")
        if self.opt_dir.is_dir():
            lines += [f"mount --bind {q(str(self.opt_dir))} /opt", "mount -o remount,bind,ro /opt"]
        lines += [f"mount --bind {q(str(self.task_dir))} {TASK_ROOT}", f"mount -o remount,bind,ro {TASK_ROOT}",
                  f"mount --bind {q(str(hosts))} /etc/hosts"]
        for shared in self.shared:  # mount points inside the private /tmp, carried over by --rbind
            inside = self.tmp / shared.relative_to(_HOST_TMP)
            lines += [f"mkdir -p {q(str(inside))}", f"mount --bind {q(str(shared))} {q(str(inside))}"]
        lines += [f"mount --rbind {q(str(self.tmp))} /tmp", 'cd "$1"', "shift", 'exec "$@"']
        return "\n".join(lines)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
