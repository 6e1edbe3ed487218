"""The launcher starts the extension with -S (no site processing): bootstrap.py puts the
interpreter's site-packages on sys.path itself, without running their ``.pth`` files. A task
runs in the extension and must import what it imports in the function, where site ran: found,
a package reachable only through a ``.pth`` of the interpreter's site-packages (an editable
install, a namespace package's ``-nspkg.pth``, a path file a container image adds) imported in
the function and failed with ModuleNotFoundError in the extension's task, which then used up
its attempts. The fix: the extension runs those ``.pth`` files itself when the drainer is made
(after it reported ready, so its start still pays nothing for them).

Real processes: the layer's launcher (dist/layer, `make layer`) under a virtual environment's
interpreter whose site-packages holds the ``.pth``, against bench's Extensions API stub; a
function-side process defers the task over the real socket.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import LAYER, child_env
from bench.ext_stub import RealExtension

TASKS = """
from handler_lib import defer


@defer.task
def touch(path):
    import pth_only_pkg  # importable only through the interpreter's extra.pth

    with open(path, "w") as out:
        out.write(str(pth_only_pkg.VALUE))
"""


def _venv_with_a_pth(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = venv / "lib" / version / "site-packages"
    extra = tmp_path / "extra"
    (extra / "pth_only_pkg").mkdir(parents=True)
    (extra / "pth_only_pkg" / "__init__.py").write_text("VALUE = 42\n")
    (site_packages / "extra.pth").write_text(f"{extra}\n")
    return venv / "bin" / "python"


@pytest.mark.skipif(not (LAYER / "extensions" / "defer-runner").exists(), reason="run `make layer` first")
def test_a_task_imports_a_package_found_through_the_interpreters_pth(tmp_path):
    python = _venv_with_a_pth(tmp_path)
    task_root = tmp_path / "task"
    task_root.mkdir()
    (task_root / "mytasks.py").write_text(TASKS)
    probe = subprocess.run([str(python), "-c", "import pth_only_pkg"], capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0, probe.stderr  # where site runs (the function), it imports
    ext = RealExtension(env={"DEFER_RUNNER_PYTHON": str(python), "LAMBDA_TASK_ROOT": str(task_root),
                             "DEFER_MAX_ATTEMPTS": "1"})
    out = tmp_path / "touched"
    try:
        ext.start()
        function = child_env({"DEFER_SOCKET": ext.socket_path, "DEFER_MODE": "extension",
                              "PYTHONPATH": f"{LAYER / 'python'}{os.pathsep}{task_root}"})
        sent = subprocess.run([str(python), "-c", f"import mytasks; mytasks.touch.defer({str(out)!r})"],
                              env=function, capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        ext.stub.push_invoke("r1", timeout_s=10)
        assert ext.stub.wait_next_calls(2, 30), ext.log()  # the invoke's drain is over
        assert out.exists(), ext.log()
        assert out.read_text() == "42"
    finally:
        ext.stop()
