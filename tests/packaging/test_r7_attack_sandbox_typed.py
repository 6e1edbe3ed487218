"""docs/testing.md and lambda_sandbox/README.md show a user's tests driving `lambda_sandbox`
(`Sandbox(...)`, `box.invoke`, the pytest fixtures); the package is checked with mypy --strict
here, but the wheel shipped no py.typed for it, so a user's `mypy --strict` stopped at
`Skipping analyzing "lambda_sandbox": module is installed, but missing library stubs or
py.typed marker` (handler_lib had its marker)."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from .test_wheel import venv_python, wheel  # noqa: F401 - the fixtures: a wheel built in a temporary folder

USER_TEST = '''
from __future__ import annotations
from lambda_sandbox import Sandbox


def run(layer: str, task: str) -> int:
    with Sandbox(layer, task, "app.handler", timeout_s=5) as box:
        result = box.invoke({"name": "x"})
        return result.status
'''


def test_lambda_sandbox_is_typed_in_the_wheel(wheel: Path) -> None:  # noqa: F811
    assert "lambda_sandbox/py.typed" in zipfile.ZipFile(wheel).namelist()


def test_a_users_sandbox_test_type_checks_strictly(venv_python: Path, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "test_user_sandbox.py").write_text(USER_TEST)
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           "--python-executable", str(venv_python), "test_user_sandbox.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
