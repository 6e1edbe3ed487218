"""Every ```python block of README.md and docs/*.md type-checks with ``mypy --strict``, as a
user's code would against the installed package (its ``py.typed``): a sample that shows an
untyped handler teaches one, and a public name the checker cannot see (not re-exported) fails
the reader's build, not ours. Blocks are cut into files as test_samples runs them: a block of
its own is a module, ``continue`` blocks join the one before, ``module NAME`` blocks are
``NAME.py``; hidden ``setup`` code comes first, ``skip`` blocks are left out. One mypy run
per page, each in its own folder (pages reuse module names). Third-party packages without
type information (boto3) are allowed, as users without stub packages have them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from .test_samples import PAGES, ROOT, python_blocks


def _files(page: Path) -> Dict[str, str]:
    files: Dict[str, str] = {}
    last = ""
    for block in python_blocks(page):
        if block.skip:
            continue
        code = "\n".join(block.setup) + "\n" + block.code if block.setup else block.code
        if block.continues and last:
            files[last] += "\n" + code
            continue
        last = f"{block.module}.py" if block.module else f"sample_{block.line}.py"
        files[last] = code
    return files


PAGES_WITH_SAMPLES = [page for page in PAGES if _files(page)]


@pytest.mark.parametrize("page", PAGES_WITH_SAMPLES, ids=lambda p: p.name)
def test_the_page_s_samples_pass_mypy_strict(page: Path, tmp_path: Path) -> None:
    for name, code in _files(page).items():
        (tmp_path / name).write_text(code, encoding="utf-8")
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    checked = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                              "--disable-error-code=import-untyped", "--cache-dir", str(tmp_path / ".cache"),
                              *sorted(str(p) for p in tmp_path.glob("*.py"))],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    errors: List[str] = [line.replace(str(tmp_path) + os.sep, "") for line in checked.stdout.splitlines()
                         if ": error:" in line]
    assert checked.returncode == 0 and not errors, "\n".join(errors) or checked.stdout + checked.stderr
