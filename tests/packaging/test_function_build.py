"""scripts/build_layer.py --function-src: a function's code with its pinned requirements, as a
zip for deploying or (--function-dir) as a task root for the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import REPO

FASTAPI = REPO / "examples" / "fastapi"


def build(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """build_layer.py with a cache of its own (its wheels linked from the checkout's cache, so
    pip installs for real without downloading again)."""
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    shared = REPO / ".cache" / "layer" / "wheels"
    for wheel in shared.glob("*") if shared.is_dir() else ():
        os.link(wheel, cache / "wheels" / wheel.name)
    return subprocess.run([sys.executable, "scripts/build_layer.py", "--cache", str(cache), "--function-src", str(FASTAPI),
                           "--function-requirements", str(FASTAPI / "requirements.txt"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def test_a_function_dir_is_a_task_root_for_this_interpreter_and_the_build_says_no_error(tmp_path: Path) -> None:
    out = tmp_path / "task"
    proc = build(tmp_path, "--function-dir", str(out), "--function-zip", str(tmp_path / "unused.zip"))
    assert proc.returncode == 0, proc.stderr
    # pip checks a --target install against the build's own virtualenv too and printed resolver
    # ERROR lines about it (aws-sam-translator wants another pydantic) while the build succeeded
    assert "ERROR" not in proc.stderr, proc.stderr
    assert (out / "app.py").is_file() and (out / "fastapi" / "__init__.py").is_file()
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}-x86_64-linux-gnu.so"
    assert any(p.name.endswith(tag) for p in (out / "pydantic_core").glob("*.so"))  # this interpreter's build
    assert not (tmp_path / "unused.zip").exists()
