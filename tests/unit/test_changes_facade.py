"""handler_lib.changes without SQLAlchemy: what does not need it keeps working, every way it is reached."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

NO_SQLALCHEMY = "import sys; sys.modules['sqlalchemy'] = None  # as where it is not installed\n"


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_SQLALCHEMY + code], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_a_star_import_works_without_sqlalchemy():
    out = run("from handler_lib.changes import *\nprint(ChangeTarget.__name__, defer_change.__name__)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ChangeTarget", "defer_change"]


def test_the_module_can_be_inspected_without_sqlalchemy():
    out = run("import inspect, handler_lib.changes as c\n"
              "names = [n for n, _ in inspect.getmembers(c)]\n"
              "assert 'ChangeTarget' in names and 'capture_changes' not in names, names\n"
              "print('ok')")
    assert out.returncode == 0, out.stderr


def test_with_sqlalchemy_the_orm_names_are_listed_and_load():
    import handler_lib.changes as changes

    assert {"capture_changes", "ChangeCapture"} <= set(changes.__all__) <= set(dir(changes))
    from handler_lib.changes import capture_changes  # noqa: F401
