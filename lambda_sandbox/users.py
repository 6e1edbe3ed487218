"""Who the function and the extensions run as: Lambda runs them as `sbx_user1051` (uid 993,
gid 990, no supplementary groups), never as root. As root the sandbox does the same.

This module holds the user and what deciding for it needs: a permission check as that user
(mode bits and POSIX ACLs, the kernel's order), the first directory on a path it may not
enter, and an ACL grant (`setfacl -m u:993:rwx,d:u:993:rwx`, written as the xattr so no
`acl` package is needed) for the host directories the caller hands to the environment.
"""
from __future__ import annotations

import errno
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

__all__ = ["SandboxUser", "SANDBOX_USER", "permits", "blocked_ancestor", "grant", "READ", "WRITE", "EXECUTE"]

READ, WRITE, EXECUTE = 4, 2, 1

_ACCESS = "system.posix_acl_access"
_DEFAULT = "system.posix_acl_default"
_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_UNDEFINED_ID = 0xFFFFFFFF
_ENTRY = struct.Struct("<HHI")  # tag, perm, id
_Entry = Tuple[int, int, int]


@dataclass(frozen=True)
class SandboxUser:
    """The unprivileged user the processes run as."""

    uid: int
    gid: int
    name: str

    @property
    def passwd_line(self) -> str:
        return f"{self.name}:x:{self.uid}:{self.gid}::/home/{self.name}:/sbin/nologin\n"

    def setpriv(self) -> List[str]:
        """The command prefix that execs as this user (real, effective and saved ids; no groups)."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--"]

    def __str__(self) -> str:
        return f"uid {self.uid} ({self.name})"


#: Lambda's: `sbx_user1051`, uid 993; gid 990 as RIE's Managed Instances build sets it.
SANDBOX_USER = SandboxUser(993, 990, "sbx_user1051")


def _read_acl(path: Path, name: str) -> Optional[List[_Entry]]:
    """The ACL `name` of `path`, None where it has none (or the filesystem has no ACLs)."""
    try:
        raw = os.getxattr(path, name)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.EOPNOTSUPP):
            return None
        raise
    if len(raw) < 4 or struct.unpack_from("<I", raw)[0] != _VERSION:
        return None
    return [_ENTRY.unpack_from(raw, 4 + i * _ENTRY.size) for i in range((len(raw) - 4) // _ENTRY.size)]


def _mode_entries(mode: int) -> List[_Entry]:
    return [(_USER_OBJ, (mode >> 6) & 7, _UNDEFINED_ID), (_GROUP_OBJ, (mode >> 3) & 7, _UNDEFINED_ID),
            (_OTHER, mode & 7, _UNDEFINED_ID)]


def permits(path: Path, user: SandboxUser, want: int) -> bool:
    """Whether `user` (no supplementary groups) has `want` (READ|WRITE|EXECUTE) on `path`,
    as the kernel decides it: owner, named user (masked), owning or named group (masked), other."""
    try:
        st = os.stat(path)
        acl = _read_acl(path, _ACCESS)
    except OSError:
        return False
    entries = acl or _mode_entries(st.st_mode)
    mask = next((perm for tag, perm, _ in entries if tag == _MASK), 7)
    if st.st_uid == user.uid:
        return (st.st_mode >> 6) & want == want
    named = [perm for tag, perm, ident in entries if tag == _USER and ident == user.uid]
    if named:
        return named[0] & mask & want == want
    groups = [perm for tag, perm, ident in entries
              if (tag == _GROUP_OBJ and st.st_gid == user.gid) or (tag == _GROUP and ident == user.gid)]
    if groups:  # a matching group entry that grants it, else denied (other is not consulted)
        return any(perm & mask & want == want for perm in groups)
    return st.st_mode & want == want


def blocked_ancestor(path: Path, user: SandboxUser) -> Optional[Path]:
    """The first directory above `path`, from `/` down, that `user` may not enter; None if none."""
    for ancestor in reversed(Path(os.path.abspath(path)).parents):
        if not permits(ancestor, user, EXECUTE):
            return ancestor
    return None


def _with_user(entries: List[_Entry], uid: int, perm: int) -> List[_Entry]:
    kept = [e for e in entries if not (e[0] == _USER and e[2] == uid) and e[0] != _MASK]
    kept.append((_USER, perm, uid))
    mask = 0
    for tag, granted, _ in kept:
        if tag in (_USER, _GROUP_OBJ, _GROUP):
            mask |= granted
    kept.append((_MASK, mask, _UNDEFINED_ID))
    return sorted(kept, key=lambda e: (e[0], e[2]))


def _write_acl(path: Path, name: str, entries: List[_Entry]) -> None:
    os.setxattr(path, name, struct.pack("<I", _VERSION) + b"".join(_ENTRY.pack(*e) for e in entries))


def grant(path: Path, user: SandboxUser, perm: int, inherit: bool = False) -> None:
    """Give `user` `perm` on `path` with an ACL entry (the other entries kept); `inherit`
    (directories): also a default entry, so what is created in it later is `user`'s too.
    Raises OSError where the filesystem has no ACLs."""
    st = os.stat(path)
    if permits(path, user, perm) and not inherit:
        return
    _write_acl(path, _ACCESS, _with_user(_read_acl(path, _ACCESS) or _mode_entries(st.st_mode), user.uid, perm))
    if inherit and stat.S_ISDIR(st.st_mode):
        current = _read_acl(path, _DEFAULT) or _mode_entries(st.st_mode)
        _write_acl(path, _DEFAULT, _with_user(current, user.uid, perm))
