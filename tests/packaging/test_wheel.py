"""The wheel a user gets from ``pip install``: every package, typed, and inline delivery works
from it in a fresh virtualenv (not the editable install of the repo)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.moto_server import drain_queue

from .conftest import REPO, run

PACKAGES = ("handler_lib", "_defer_runner", "lambda_sandbox")
TYPED_HANDLER = Path(__file__).parent / "typed_handler"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from the tracked files alone: setuptools reuses a checkout's build/lib, and a stale
    one (a package since renamed) would ship in the wheel and hide what a clean build makes."""
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, check=True, capture_output=True
    ).stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)])
    (built,) = out.glob("lambda_defer-*.whl")
    return built


@pytest.fixture(scope="module")
def venv_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel and its dependencies (the layer's pinned wheels when
    cached, else the package index)."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    cached = REPO / ".cache" / "layer" / "wheels"
    find_links = ["--find-links", str(cached)] if cached.is_dir() else []
    run([str(python), "-m", "pip", "install", "-q", *find_links, str(wheel)])
    return python


def test_the_wheel_installs_only_lambda_defers_own_top_level_names(wheel: Path):
    """Not `extension`: many projects have a package of that name (the repository's extension/
    ships as _defer_runner, as in the layer)."""
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == set(PACKAGES)


def run_inline(venv_python: Path, script: str, queue_url: str, tmp_path: Path) -> dict:
    """Run ``script`` (it prints one JSON line) in the wheel's venv, in inline mode, away from the repo."""
    env = {**os.environ, "DEFER_MODE": "inline", "DEFER_SOCKET": str(tmp_path / "none.sock")}
    env.pop("PYTHONPATH", None)
    out = subprocess.run([str(venv_python), "-c", script, queue_url], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


SOURCES = {"handler_lib": "handler_lib", "_defer_runner": "extension", "lambda_sandbox": "lambda_sandbox"}


def test_the_wheel_ships_every_package_and_the_typed_marker(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    for top in PACKAGES:
        source = REPO / SOURCES[top]
        for module in source.rglob("*.py"):
            if "__pycache__" not in module.parts:
                assert f"{top}/{module.relative_to(source).as_posix()}" in names
    assert "handler_lib/engine/sinks/sqs.py" in names
    assert "handler_lib/py.typed" in names


def test_inline_delivery_runs_from_the_installed_wheel(venv_python: Path, aws_resources, tmp_path):
    res = aws_resources()
    script = (
        "import json, sys\n"
        "from types import SimpleNamespace\n"
        "import _defer_runner, handler_lib\n"
        "from handler_lib import defer\n"
        "@defer\n"
        "def handler(event, context):\n"
        "    return defer.sqs(sys.argv[1], {'from': 'wheel'})\n"
        "item_id = handler({}, SimpleNamespace(aws_request_id='r-wheel'))\n"
        "print(json.dumps({'id': item_id, 'files': [handler_lib.__file__, _defer_runner.__file__]}))\n")
    result = run_inline(venv_python, script, res.queue_url, tmp_path)
    venv = str(venv_python.parent.parent)
    assert all(path.startswith(venv) for path in result["files"])  # not the repo's sources
    assert drain_queue(res.queue_url, 1, timeout=3) == [{"from": "wheel"}]


def test_a_users_handler_type_checks_strictly_against_the_installed_package(venv_python: Path, tmp_path):
    def mypy(target: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                               "--python-executable", str(venv_python), str(target)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)

    good = mypy(TYPED_HANDLER / "app.py")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = mypy(TYPED_HANDLER / "misuse.py")
    assert bad.returncode == 1
    assert [line.split(":")[1] for line in bad.stdout.splitlines() if ": error:" in line] == ["13", "14", "15", "16"]
    ran = subprocess.run([str(venv_python), "-c", "import app; app.test_handler(); app.test_workflow_handler()"], cwd=TYPED_HANDLER,
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr


def test_defer_change_needs_no_sqlalchemy(venv_python: Path, aws_resources, tmp_path):
    """Manual change events are for databases without an ORM: the wheel's venv has no SQLAlchemy."""
    res = aws_resources()
    script = (
        "import importlib.util, json, sys\n"
        "from types import SimpleNamespace\n"
        "assert importlib.util.find_spec('sqlalchemy') is None, 'this venv must not have SQLAlchemy'\n"
        "from handler_lib import defer\n"
        "from handler_lib.changes import ChangeTarget\n"
        "@defer\n"
        "def handler(event, context):\n"
        "    return defer.change('orders', 'MODIFY', {'id': 7}, {'status': 'paid'}, {'status': 'new'},\n"
        "                        target=ChangeTarget.sqs(sys.argv[1]))\n"
        "print(json.dumps({'id': handler({}, SimpleNamespace(aws_request_id='r-change')),\n"
        "                  'sqlalchemy': 'sqlalchemy' in sys.modules}))\n")
    result = run_inline(venv_python, script, res.queue_url, tmp_path)
    assert result["sqlalchemy"] is False
    (message,) = drain_queue(res.queue_url, 1, timeout=3)
    (record,) = message["Records"]
    assert record["eventName"] == "MODIFY" and record["dynamodb"]["Keys"] == {"id": {"N": "7"}}


def test_the_sandbox_without_its_extra_says_what_to_install(venv_python: Path, tmp_path: Path):
    """The wheel alone has no awslambdaric (it comes with lambda-defer[sandbox]): the sandbox
    refuses to start with one line that says so, instead of a Runtime.ExitError in a log."""
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (tmp_path / "opt").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    assert subprocess.run([str(venv_python), "-c", "import awslambdaric"], cwd=tmp_path, env=env,
                          capture_output=True).returncode != 0
    out = subprocess.run([str(venv_python), "-m", "lambda_sandbox", "--opt", str(tmp_path / "opt"),
                          "--task", str(task), "--handler", "app.handler"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "pip install 'lambda-defer[sandbox]'" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
