"""Fixtures for the packaging tests: a layer built into a temp folder, and `make package`.

Both run the real commands (pip for the Lambda platform, Serverless Framework v3 from npm,
moto server); downloads are cached under .cache/ and node_modules/, so only the first run
on a machine is slow.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
ARCHES = ("x86_64", "aarch64")
# First runs download wheels and npm packages; later runs take seconds.
BUILD_TIMEOUT_S = 900


def run(cmd: list[str], *, env: dict[str, str] | None = None,
        timeout: float = BUILD_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run a command in the repo; on failure show its output in the test report."""
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\n"
                    f"--- stdout\n{proc.stdout[-8000:]}\n--- stderr\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="session")
def build_layer_module() -> ModuleType:
    """scripts/build_layer.py as a module (for its helpers)."""
    spec = importlib.util.spec_from_file_location("build_layer", REPO / "scripts" / "build_layer.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def layer_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(layer dir, layer zip, build log) from scripts/build_layer.py into a temp folder.

    A private output, so a teammate's concurrent `make layer` cannot change it mid-test.
    """
    out = tmp_path_factory.mktemp("layer-build") / "layer"
    proc = run([sys.executable, "scripts/build_layer.py", "--out", str(out)])
    return out, out.with_name("layer.zip"), proc.stderr


@pytest.fixture(scope="session")
def layer_dir(layer_build: tuple[Path, Path, str]) -> Path:
    return layer_build[0]


@pytest.fixture(scope="session")
def sls_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make package` (stage local): a private copy of the .serverless folder.

    A copy, because any later `serverless package` (the prod-stage test) rewrites
    .serverless/ even when told to write its output elsewhere."""
    if subprocess.run(["which", "npm"], capture_output=True).returncode != 0:
        pytest.fail("npm is required for `make package`")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    run(["make", "package", "SLS_STAGE=local"], env=env)
    snapshot = tmp_path_factory.mktemp("sls") / ".serverless"
    shutil.copytree(REPO / ".serverless", snapshot)
    return snapshot


# The SAM CLI, in a virtualenv of its own (its pins conflict with the project's), installed
# from PyPI on first use; the version fetch_rie.sh takes RIE from.
SAM_CLI_VERSION = "1.170.0"


@pytest.fixture(scope="session")
def sam_cli() -> Path:
    """`sam`, from .cache/sam-cli-<version>/, installed once (a lock: parallel runs share it)."""
    home = REPO / ".cache" / f"sam-cli-{SAM_CLI_VERSION}"
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f"sam-cli-{SAM_CLI_VERSION}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / ".complete").exists():
            shutil.rmtree(home, ignore_errors=True)  # a venv's scripts name its folder: built in place
            run([sys.executable, "-m", "venv", str(home)])
            run([str(home / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 f"aws-sam-cli=={SAM_CLI_VERSION}"])
            (home / ".complete").touch()
    return home / "bin" / "sam"


def unpack(archive: Path, dest: Path) -> Path:
    """Extract keeping each entry's Unix mode (zipfile drops it), as Lambda does for layers."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(target, mode)
    return dest


def greet_in_the_sandbox(layer: Path, task: Path, handler: str, queue_url: str, tmp_path: Path) -> None:
    """Run examples/own_function's greeting as its build left it, with the layer, in the sandbox
    (which, as Lambda, shows the function only its task root, the layer and the runtime's
    packages): it answers, logs through its bundled Powertools, and its deferred message lands."""
    from lambda_sandbox import Sandbox
    from tests.support.moto_server import drain_queue

    env = {"GREETINGS_QUEUE_URL": queue_url, "DEFER_SOCKET": str(tmp_path / "defer.sock"),
           "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    with Sandbox(layer, task, handler, timeout_s=10, env=env, echo=False) as box:
        result = box.invoke({"name": "ada"})
        assert result.status == 200 and result.json() == {"statusCode": 200, "body": "hello ada"}, result.body
        assert drain_queue(queue_url, 1, timeout=5) == [{"greeted": "ada"}]
        assert any('"service":"greetings"' in line.text.replace(" ", "") for line in box.logs)
