"""The permission model the sandbox decides with (users.py): mode bits and POSIX ACLs as the
kernel reads them, and the ACL grant it gives Lambda's user on the directories handed to
the function (checked against the kernel itself: a process of that user)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from lambda_sandbox.users import EXECUTE, READ, SANDBOX_USER, WRITE, SandboxUser, blocked_ancestor, grant, permits

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="grants and setuid need root")
OTHER = SandboxUser(SANDBOX_USER.uid + 1, SANDBOX_USER.gid + 1, "someone")


@pytest.fixture
def base():
    """A folder anyone may enter (pytest's tmp_path lies under a 0700 one)."""
    path = Path(tempfile.mkdtemp(prefix="r3-users-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def _as_user(*argv: str) -> int:
    return subprocess.run(argv, user=SANDBOX_USER.uid, group=SANDBOX_USER.gid, extra_groups=[],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


@as_root
def test_mode_bits_owner_group_other(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    os.chown(path, SANDBOX_USER.uid, OTHER.gid)
    path.chmod(0o640)
    assert permits(path, SANDBOX_USER, READ | WRITE) and not permits(path, SANDBOX_USER, EXECUTE)
    assert permits(path, SandboxUser(OTHER.uid, OTHER.gid, "group"), READ)
    assert not permits(path, SandboxUser(OTHER.uid, OTHER.gid, "group"), WRITE)
    assert not permits(path, SandboxUser(OTHER.uid, 0, "other"), READ)
    path.chmod(0o604)
    assert permits(path, SandboxUser(OTHER.uid, 0, "other"), READ)
    assert not permits(path, SandboxUser(OTHER.uid, OTHER.gid, "group"), READ), "the group entry decides, not other"


@as_root
def test_grant_gives_the_user_a_root_only_directory_and_what_is_made_in_it(base):
    assert blocked_ancestor(base, SANDBOX_USER) is None
    folder = base / "handed"
    folder.mkdir(mode=0o700)
    assert not permits(folder, SANDBOX_USER, EXECUTE)
    assert blocked_ancestor(folder / "x", SANDBOX_USER) == folder
    grant(folder, SANDBOX_USER, READ | WRITE | EXECUTE, inherit=True)
    assert permits(folder, SANDBOX_USER, READ | WRITE | EXECUTE) and not permits(folder, OTHER, EXECUTE)
    assert _as_user("touch", str(folder / "by-user")) == 0, "the kernel agrees"
    # a folder root makes there afterwards is the user's too (the default entry)
    (folder / "later").mkdir()
    assert permits(folder / "later", SANDBOX_USER, WRITE | EXECUTE)
    assert _as_user("touch", str(folder / "later" / "by-user")) == 0
    # what was not handed keeps its mode
    other = base / "kept"
    other.mkdir(mode=0o700)
    assert _as_user("touch", str(other / "x")) != 0 and not permits(other, SANDBOX_USER, EXECUTE)


@as_root
def test_grant_keeps_the_other_entries(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o750)
    grant(folder, OTHER, READ | EXECUTE)
    grant(folder, SANDBOX_USER, READ | WRITE | EXECUTE, inherit=True)
    assert permits(folder, OTHER, READ | EXECUTE) and not permits(folder, OTHER, WRITE)
    assert permits(folder, SANDBOX_USER, READ | WRITE | EXECUTE)
    grant(folder, SANDBOX_USER, READ | WRITE | EXECUTE, inherit=True)  # twice is once
    assert permits(folder, OTHER, READ | EXECUTE) and permits(folder, SANDBOX_USER, WRITE)
