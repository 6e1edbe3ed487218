"""The demos' functions as they are deployed: a task root holding the function's code and the
pinned packages of its requirements, built by scripts/build_layer.py for the interpreter the
sandbox runs (dist/demo/<name>/). The sandbox, as Lambda, lets a function import only that,
its layer's python/ and the runtime's packages, never this virtualenv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def task_root(src: Path, requirements: Path, out: Path) -> Path:
    """`out` (under dist/demo/): `src`'s files with `requirements` installed beside them."""
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / "build_layer.py"), "--function-src", str(src),
           "--function-requirements", str(requirements), "--function-dir", str(out)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"building the function's package failed ({' '.join(cmd)}):\n{proc.stdout}{proc.stderr}")
    return out
