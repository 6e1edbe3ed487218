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

As root the processes run as Lambda's unprivileged user (users.py) unless told otherwise:
in the namespace its last step execs them through `setpriv`; where the interpreter lies
behind a directory that user may not enter (a pyenv under /root), the namespace shows it
through a tmpfs over that directory holding the interpreter alone. The host directories
handed to the function get an ACL entry for that user (default entry included), and so do
the task and layer folders themselves where that user could not read them (Lambda's
/var/task and /opt are readable). Without a namespace the processes start as that user
only where every path they need is reachable at its host path.
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
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .errors import SandboxStartError
from .users import EXECUTE, READ, SANDBOX_USER, WRITE, SandboxUser, blocked_ancestor, grant, permits

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


def _tmp_paths(values: Iterable[str]) -> List[Path]:
    """Every /tmp path named in `values` (also inside a URL such as sqlite:////tmp/x/db)."""
    return [Path(os.path.normpath(m.group(0).replace("//", "/"))) for v in values for m in _TMP_PATH.finditer(v)]


def _nearest_dirs(paths: Iterable[Path]) -> List[Path]:
    """For each path under /tmp, its nearest existing directory (itself if it is one)."""
    found: List[Path] = []
    for path in paths:
        path = Path(os.path.realpath(path))
        while not path.is_dir() and _under_tmp(path):
            path = path.parent
        if _under_tmp(path):
            found.append(path)
    return found


def shared_dirs(values: Iterable[str], extra: Iterable[Path]) -> List[Path]:
    """Host directories under /tmp to keep visible: for every /tmp path named in `values`
    (also inside a URL such as sqlite:////tmp/x/db), its nearest existing directory."""
    found = _nearest_dirs([*_tmp_paths(values), *extra])
    kept = [p for p in found if not any(q in p.parents for q in found)]
    return sorted(set(kept))


def _outermost(paths: Iterable[Path]) -> List[Path]:
    unique = sorted(set(paths))
    return [p for p in unique if not any(q in p.parents for q in unique)]


class Filesystem:
    """One sandbox's private /tmp and, where it can, the mount namespace around it."""

    def __init__(self, opt_dir: Path, task_dir: Path, env_values: Iterable[str], share: Sequence[Path] = (),
                 namespace: Optional[bool] = None, runtime_packages: Sequence[Path] = ()) -> None:
        self.opt_dir = opt_dir
        self.task_dir = task_dir
        self.namespaced = namespaces_available() if namespace is None else namespace and namespaces_available()
        self.cgroup_procs: List[Path] = []  # the memory and CPU cgroups' (host.py)
        self.root = Path(tempfile.mkdtemp(prefix="lambda_sandbox-"))
        self.tmp = self.root / "tmp"
        self.tmp.mkdir()
        self.tmp.chmod(0o1777)
        env_values = list(env_values)
        # the interpreter and the runtime's packages (runtime_packages.py), reached as /var/lang
        # and /var/runtime are: wherever they lie, even under /tmp or a directory uid 993 may not enter
        interpreter = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))]
        self._interpreter = [Path(os.path.realpath(p)) for p in [*interpreter, *map(str, runtime_packages)]]
        self._links = [*_link_targets(opt_dir), *_link_targets(task_dir)]
        self.shared = shared_dirs(env_values, [*share, *self._interpreter, *self._links])
        # what the caller handed the function (a path in its variables, `share`): writable for it
        named = [Path(os.path.realpath(p)) for p in [*_tmp_paths(env_values), *share]]
        self._handed = sorted(set(_nearest_dirs(named)))
        self._handed_files = sorted({p for p in named if _under_tmp(p) and p.exists() and not p.is_dir()})
        self.user: Optional[SandboxUser] = None
        self.user_warning: Optional[str] = None
        self._reach: List[Tuple[Path, List[Path]]] = []  # (a directory the user may not enter, what to show in it)

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
        if executable.is_dir() or not self._may_execute(executable, inside):
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
            if interpreter.is_dir() or not self._may_execute(interpreter):
                return f"fork/exec {inside}: permission denied"
        elif not head.startswith(b"\x7fELF") or _other_architecture(head):
            return f"fork/exec {inside}: exec format error"
        return None

    def _may_execute(self, host: Path, inside: Optional[PurePath] = None) -> bool:
        """Whether the processes' user may exec `host`; for a file in the layer or the task root
        (`inside`), the folders on its way from the mount down are checked too (as execve does)."""
        if self.user is None:
            return os.access(host, os.X_OK)
        folders: List[Path] = []
        if inside is not None:
            for seen, root in ((OPT, self.opt_dir), (TASK_ROOT, self.task_dir)):
                relative, mount = PurePosixPath(inside), PurePosixPath(seen)
                if self.namespaced and mount in relative.parents:
                    parts = relative.relative_to(mount).parts[:-1]
                    folders = [root / Path(*parts[:i]) for i in range(len(parts) + 1)]
        return all(permits(f, self.user, EXECUTE) for f in folders) and permits(host, self.user, EXECUTE)

    @property
    def warning(self) -> Optional[str]:
        if self.namespaced:
            return None
        return ("lambda_sandbox: WARNING: no private mount namespace (needs root and unshare): the function and "
                f"extensions see the host's filesystem; /tmp is not private (TMPDIR={self.tmp}), the layer is "
                f"not at /opt ({self.opt_dir}), the task root is writable, and sandbox.localdomain resolves "
                "only where the host resolves it")

    # --- who the processes run as --------------------------------------------------------------
    def choose_user(self, unprivileged: Optional[bool]) -> None:
        """As root, run the processes as Lambda's unprivileged user (`user`): None (default)
        where the sandbox can, else as root with a WARNING (`user_warning`); True: where it
        cannot, SandboxStartError with the reason; False: as root. Grants that user the
        host directories handed to the function."""
        if unprivileged is False or os.geteuid() != 0:
            return
        user = SANDBOX_USER
        problem = (self._user_problem(user) or self._grant(user)
                   or (None if self.namespaced else self._reachable(user, [*self.shared, *self._handed])))
        if problem is None:
            self.user = user
            return
        if unprivileged:
            raise SandboxStartError(f"cannot run the function and extensions as {user}: {problem} "
                                    "(unprivileged=False, --as-root, runs them as root)")
        self.user_warning = (f"lambda_sandbox: WARNING: the function and extensions run as root, not as {user} as "
                             f"on Lambda: {problem}")

    @property
    def popen_user(self) -> Optional[SandboxUser]:
        """Whom to start a process as (without the namespace; in it the mount script drops)."""
        return None if self.namespaced else self.user

    def _needed(self) -> List[Path]:
        """What the processes need besides the task and the layer: the interpreter, the runtime's
        packages (awslambdaric, boto3) and where links in the task and the layer point."""
        return _outermost(p for p in [*self._interpreter, *self._links] if p.is_dir())

    def _reachable(self, user: SandboxUser, paths: Iterable[Path]) -> Optional[str]:
        for path in paths:
            blocked = blocked_ancestor(path, user)
            if blocked is not None:
                return f"{blocked} (on the way to {path}) is not searchable by it"
        return None

    def _user_problem(self, user: SandboxUser) -> Optional[str]:
        """Why `user` could not run the processes here (None: it can)."""
        if self.namespaced:
            if shutil.which("setpriv") is None:
                return "setpriv (util-linux) is not on PATH"
            needed = [p for p in self._needed() if not _under_tmp(p)]  # under /tmp: mounted in the private /tmp
            reach: Dict[Path, List[Path]] = {}
            for path in needed:
                blocked = blocked_ancestor(path, user)
                if blocked is None:
                    continue
                if blocked == Path("/") or any(blocked == v or blocked in v.parents
                                               for v in (OPT, TASK_ROOT, _HOST_TMP, Path("/etc/hosts"))):
                    return f"{blocked} (on the way to {path}) is not searchable by it"
                reach.setdefault(blocked, []).append(path)
            self._reach = sorted(reach.items())
        else:
            self.root.chmod(0o711)  # the private directory (TMPDIR) lies in it
            problem = self._reachable(user, [self.task_dir, *([self.opt_dir] if self.opt_dir.is_dir() else []),
                                             *self._needed(), self.tmp])
            if problem is not None:
                return problem
        for path in self._needed():
            if not permits(path, user, READ | EXECUTE):
                return f"{path} is not readable by it"
        return None

    def _grant(self, user: SandboxUser) -> Optional[str]:
        """ACL entries for `user`: rwx (inherited by what is made in them) on the directories
        handed to the function, rw on the files handed (a socket too: connecting needs w),
        r-x on the task and layer folders where it could not read them (Lambda's /var/task and
        /opt are readable)."""
        targets = [(d, READ | WRITE | EXECUTE, True) for d in self._handed]
        targets += [(f, READ | WRITE, False) for f in self._handed_files]
        targets += [(d, READ | EXECUTE, False) for d in (self.task_dir, self.opt_dir)
                    if d.is_dir() and not permits(d, user, READ | EXECUTE)]
        for path, perm, inherit in targets:
            try:
                grant(path, user, perm, inherit)
            except OSError as exc:
                return f"cannot give it access to {path} (an ACL entry): {exc.strerror}"
        return None

    # --- set-up and removal -----------------------------------------------------------------
    def _mount_script(self) -> str:
        """Join the memory and CPU cgroups (if any), mount, cd, exec: the process is set up before its code runs."""
        hosts = self.root / "hosts"
        if not hosts.exists():
            try:
                original = Path("/etc/hosts").read_text()
            except OSError:
                original = "127.0.0.1\tlocalhost\n"
            hosts.write_text(original.rstrip("\n") + "\n" + _HOSTS_LINE)
            hosts.chmod(0o644)  # whatever the umask: an unprivileged process reads it
            TASK_ROOT.mkdir(parents=True, exist_ok=True)
        q = shlex.quote
        lines = ["set -e"]
        lines += [f"echo $$ > {q(str(procs))}" for procs in self.cgroup_procs]
        if self.opt_dir.is_dir():
            lines += [f"mount --bind {q(str(self.opt_dir))} /opt", "mount -o remount,bind,ro /opt"]
        lines += [f"mount --bind {q(str(self.task_dir))} {TASK_ROOT}", f"mount -o remount,bind,ro {TASK_ROOT}",
                  f"mount --bind {q(str(hosts))} /etc/hosts"]
        if self.user is not None:
            lines += [f"mount --bind {q(str(self._passwd(self.user)))} /etc/passwd", *self._reach_lines()]
        for shared in self.shared:  # mount points inside the private /tmp, carried over by --rbind
            inside = self.tmp / shared.relative_to(_HOST_TMP)
            lines += [f"(umask 022 && mkdir -p {q(str(inside))})", f"mount --bind {q(str(shared))} {q(str(inside))}"]
        drop = " ".join(self.user.setpriv()) + " " if self.user is not None else ""
        lines += [f"mount --rbind {q(str(self.tmp))} /tmp", 'cd "$1"', "shift", f'exec {drop}"$@"']
        return "\n".join(lines)

    def _passwd(self, user: SandboxUser) -> Path:
        """/etc/passwd as the processes see it: the host's, with Lambda's user added."""
        passwd = self.root / "passwd"
        if not passwd.exists():
            try:
                original = Path("/etc/passwd").read_text()
            except OSError:
                original = "root:x:0:0:root:/root:/bin/sh\n"
            known = any(line.split(":")[2:3] == [str(user.uid)] for line in original.splitlines())
            passwd.write_text(original if known else original.rstrip("\n") + "\n" + user.passwd_line)
            passwd.chmod(0o644)
        return passwd

    def _reach_lines(self) -> List[str]:
        """Show what the processes need behind a directory their user may not enter (a pyenv
        interpreter under /root): that directory becomes a tmpfs holding only those paths."""
        q = shlex.quote
        lines: List[str] = []
        for i, (blocked, paths) in enumerate(self._reach):
            stages = [self.root / "reach" / f"{i}-{j}" for j in range(len(paths))]
            for stage, path in zip(stages, paths):
                stage.mkdir(parents=True, exist_ok=True)
                lines.append(f"mount --bind {q(str(path))} {q(str(stage))}")
            lines.append(f"mount -t tmpfs -o mode=0755,size=64k lambda_sandbox {q(str(blocked))}")
            for stage, path in zip(stages, paths):
                inside = q(str(path))
                lines += [f"(umask 022 && mkdir -p {inside})", f"mount --move {q(str(stage))} {inside}"]
        return lines

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
