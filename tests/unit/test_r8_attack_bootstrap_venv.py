"""layer/bootstrap.py under the launcher's -S finds a virtual environment's site-packages as
``site`` would. Found: a ``pyvenv.cfg`` without an ``include-system-site-packages`` line
(``site`` reads its absence as true) was read as false, so the system site-packages the
function's process has (a runtime's bundled boto3, say) were missing from the extension's.

Real interpreters: a virtual environment laid out by hand (as tools other than ``venv``
write it), run with -S, against the same interpreter with site.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("bootstrap", {str(REPO / "layer" / "bootstrap.py")!r})
bootstrap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bootstrap)
print(json.dumps(bootstrap.site_packages()))
"""
WITH_SITE = "import json, site, sys; print(json.dumps([p for p in sys.path if p.endswith(('site-packages', 'dist-packages'))]))"


def _venv(tmp_path: Path, cfg: str) -> Path:
    base = Path(os.path.realpath(sys.executable))
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(base)
    (venv / "pyvenv.cfg").write_text(f"home = {base.parent}\n{cfg}")
    return venv / "bin" / "python"


def _folders(python: Path, *args: str) -> list:
    proc = subprocess.run([str(python), "-I", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_pyvenv_cfg_without_the_system_site_line_includes_the_system_site_packages(tmp_path):
    python = _venv(tmp_path, "")  # no include-system-site-packages line
    expected = [p for p in _folders(python, "-c", WITH_SITE) if os.path.isdir(p)]
    assert len(expected) >= 2, expected  # the venv's own, and the system's (site's default)
    assert _folders(python, "-S", "-c", PROBE) == expected


def test_include_system_site_packages_false_and_true_match_site(tmp_path):  # held
    for value in ("false", "true"):
        python = _venv(tmp_path / value, f"include-system-site-packages = {value}\n")
        expected = [p for p in _folders(python, "-c", WITH_SITE) if os.path.isdir(p)]
        assert _folders(python, "-S", "-c", PROBE) == expected, value
