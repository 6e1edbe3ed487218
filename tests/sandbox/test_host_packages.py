"""What a function can import: on Lambda its zip, its layers' python/ and the runtime's own
packages; never the developer's virtualenv. A dependency left out of the zip must fail in the
sandbox as it fails on Lambda; `--allow-host-packages` brings the old, permissive view back."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import tomllib
from pathlib import Path
from typing import Callable, List

import pytest

from lambda_sandbox import Sandbox
from lambda_sandbox.filesystem import namespaces_available
from lambda_sandbox.runtime_packages import (AWSLAMBDARIC_VERSION, BOTO3_VERSION, RUNTIME_PINS, ensure_runtime_packages,
                                             runtime_dir)
from lambda_sandbox.testing import LambdaDirs
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]

# fastapi is in the host's virtualenv (the dev extra), never in Lambda's runtime.
PROBE = """
    import importlib

    def handler(event, context):
        out = {}
        for name in ("fastapi", "boto3", "awslambdaric"):
            try:
                module = importlib.import_module(name)
            except ImportError as exc:
                out[name] = {"error": str(exc)}
            else:
                out[name] = {"file": module.__file__, "version": getattr(module, "__version__", None)}
        return out
"""


def test_a_package_only_the_host_has_is_not_importable(lambda_dirs: LambdaDirs,
                                                       sandbox_factory: Callable[..., Sandbox]) -> None:
    # GIVEN a function whose folder holds no fastapi (the host's virtualenv has it)
    lambda_dirs.function(PROBE)
    box = sandbox_factory(lambda_dirs)
    # WHEN it imports it
    seen = box.invoke({}).json()
    # THEN it fails as on Lambda, while the runtime's boto3 and awslambdaric are there, pinned
    assert seen["fastapi"] == {"error": "No module named 'fastapi'"}
    assert seen["boto3"]["version"] == BOTO3_VERSION
    assert Path(seen["boto3"]["file"]).is_relative_to(runtime_dir())
    assert Path(seen["awslambdaric"]["file"]).is_relative_to(runtime_dir())
    assert any("packages: task root, layers' python/, runtime" in line.text for line in box.logs)


def test_the_runtime_folder_holds_exactly_the_pins() -> None:
    # every package pinned, transitive ones too: a release on PyPI changes nothing in it
    installed = {re.sub(r"[-_.]+", "-", d.name[:-len(".dist-info")].rsplit("-", 1)[0]).lower()
                 + "==" + d.name[:-len(".dist-info")].rsplit("-", 1)[1]
                 for d in ensure_runtime_packages().glob("*.dist-info")}
    assert installed == set(RUNTIME_PINS)


def test_the_runtime_matches_the_sandbox_extra() -> None:
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["sandbox"]
    assert extra == [f"awslambdaric=={AWSLAMBDARIC_VERSION}"]


def test_a_package_in_the_task_folder_wins_over_the_runtimes(lambda_dirs: LambdaDirs,
                                                             sandbox_factory: Callable[..., Sandbox]) -> None:
    # GIVEN a function that ships its own (fake) boto3, as a zip built with pip --target does
    lambda_dirs.function(PROBE)
    (lambda_dirs.task / "boto3").mkdir()
    (lambda_dirs.task / "boto3" / "__init__.py").write_text("__version__ = 'shipped'\n")
    # THEN it imports that one: the task root comes before the runtime's packages
    assert sandbox_factory(lambda_dirs).invoke({}).json()["boto3"]["version"] == "shipped"


def test_allow_host_packages_shows_the_hosts_virtualenv(lambda_dirs: LambdaDirs,
                                                        sandbox_factory: Callable[..., Sandbox]) -> None:
    lambda_dirs.function(PROBE)
    box = sandbox_factory(lambda_dirs, allow_host_packages=True)
    seen = box.invoke({}).json()
    assert Path(seen["fastapi"]["file"]).is_relative_to(Path(sys.prefix).resolve())
    assert any("--allow-host-packages" in line.text and "are visible" in line.text for line in box.logs)


def test_the_command_line_says_which_packages_are_in_force(lambda_dirs: LambdaDirs) -> None:
    lambda_dirs.function(PROBE)
    for extra, expected in (([], r"packages: task root, layers' python/, runtime \(awslambdaric==[\d.]+, boto3==[\d.]+: /"),
                            (["--allow-host-packages"], r"packages: the host's .* are visible")):
        proc = subprocess.Popen(
            [sys.executable, "-m", "lambda_sandbox", "--opt", str(lambda_dirs.task), "--task", str(lambda_dirs.task),
             "--handler", "app.handler", "--port", "0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
        lines: List[str] = []
        threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),  # type: ignore[union-attr]
                         daemon=True).start()
        try:
            wait_until(lambda: any(re.search(expected, line) for line in lines), 30, message=lambda: "".join(lines))
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.mark.skipif(not namespaces_available() or os.geteuid() != 0,
                    reason="Lambda's user (uid 993) and the mount namespace need root and unshare -m")
def test_the_runtime_packages_are_reached_behind_a_folder_lambdas_user_may_not_enter(
        lambda_dirs: LambdaDirs, sandbox_factory: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the runtime's packages in a cache under a folder only root may enter (a checkout under /root)
    ensure_runtime_packages()
    blocked = Path(tempfile.mkdtemp(prefix="lambda-defer-runtime-", dir="/var/tmp"))
    try:
        assert blocked.stat().st_mode & 0o777 == 0o700
        cache = blocked / "cache"
        shutil.copytree(runtime_dir(), cache / runtime_dir().name, symlinks=True)
        monkeypatch.setenv("LAMBDA_SANDBOX_RUNTIME_CACHE", str(cache))
        lambda_dirs.function(PROBE)
        box = sandbox_factory(lambda_dirs, unprivileged=True, echo=False)
        # THEN the function, run as uid 993, imports them from there, as from /var/runtime on Lambda
        seen = box.invoke({}).json()
        assert seen["boto3"]["version"] == BOTO3_VERSION
        assert Path(seen["awslambdaric"]["file"]).is_relative_to(cache)
    finally:
        shutil.rmtree(blocked)
