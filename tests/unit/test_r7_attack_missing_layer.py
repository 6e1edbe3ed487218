"""A newcomer's typo in `--opt` (or a layer not built yet: `make layer` not run) must stop the
sandbox at start, naming the layer folder, as a missing `--task` does. It was accepted: the
sandbox listened, and the first invoke failed with `Runtime.ImportModuleError: No module named
'handler_lib'`, far from where the problem entered (a repeated `--opt` was already checked)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lambda_sandbox import Sandbox, SandboxConfigError


def test_a_missing_layer_folder_is_refused_at_construction(tmp_path: Path) -> None:
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text("def handler(event, context):\n    return 1\n")
    missing = tmp_path / "dist" / "layer"
    with pytest.raises(SandboxConfigError, match=r"layer .*dist/layer.* is not a directory"):
        Sandbox(missing, task, "app.handler")
    zipped = tmp_path / "layer.zip"
    zipped.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # `--opt dist/layer.zip`: a file, not the folder
    with pytest.raises(SandboxConfigError, match="is not a directory"):
        Sandbox(zipped, task, "app.handler")


def test_the_command_line_says_so_and_exits_2(tmp_path: Path) -> None:
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text("def handler(event, context):\n    return 1\n")
    done = subprocess.run([sys.executable, "-m", "lambda_sandbox", "--opt", str(tmp_path / "nolayer"),
                           "--task", str(task), "--handler", "app.handler", "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "nolayer" in done.stderr and "is not a directory" in done.stderr
    assert "listening" not in done.stdout
