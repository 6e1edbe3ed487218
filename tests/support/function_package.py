"""A function's task root as its deployment package holds it: its code, and beside it the
pinned packages it imports (scripts/build_layer.py --function-dir, built for this interpreter).

The sandbox, as Lambda, lets a function import only its task root, its layers' `python/` and
the runtime's packages (awslambdaric, boto3): a test function that imports anything else
brings it this way, so a dependency missing from its requirements fails the test as it would
fail the deployed function.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def task_root(src: Path, dest: Path, requirements: Path | None = None) -> Path:
    """`dest`: the files of `src` plus the packages of `requirements` (default
    `src/requirements.txt`; exact pins, transitive ones too, or the build fails)."""
    requirements = requirements or src / "requirements.txt"
    cmd = [sys.executable, str(REPO / "scripts" / "build_layer.py"), "--function-src", str(src),
           "--function-requirements", str(requirements), "--function-dir", str(dest)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return dest
