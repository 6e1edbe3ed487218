"""`sam build`, as users run it, from folders outside the repository: a user's own template
with the defer-runner layer (examples/own_function), and the repository's template.yaml with
the FastAPI example, built without npm.

Without Docker, `sam build` installs requirements with the local python of the function's
runtime; this machine's is the test's interpreter, so the runtime comes from the templates'
PythonRuntime parameter (python3.12 by default: what a user with python3.12 or Docker gets)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, greet_in_the_sandbox, run

pytestmark = pytest.mark.timeout(900)

LOCAL_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"


def sam_build(sam: Path, project: Path) -> dict[str, Any]:
    """`sam build` in `project` (this interpreter's python first on PATH, as the runtime's); the built template."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAKE"))}
    env.update(SAM_CLI_TELEMETRY="0", PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}")
    proc = subprocess.run([str(sam), "build", "--parameter-overrides", f"PythonRuntime={LOCAL_RUNTIME}"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    assert "Build Succeeded" in proc.stdout
    return yaml.safe_load((project / ".aws-sam" / "build" / "template.yaml").read_text())


def test_a_users_own_function_builds_with_the_layer_and_runs(sam_cli: Path, layer_dir: Path, aws_resources,
                                                              tmp_path: Path) -> None:
    project = tmp_path / "greetings-sam"
    assert not project.is_relative_to(REPO)
    example = REPO / "examples" / "own_function"
    shutil.copytree(example / "greetings", project / "greetings")
    shutil.copy(example / "template.yaml", project)
    shutil.copytree(layer_dir, project / "defer-runner-layer", symlinks=True)
    built = sam_build(sam_cli, project)
    function = built["Resources"]["GreetFunction"]["Properties"]
    assert function["Layers"] == [{"Ref": "DeferRunnerLayer"}]
    code = project / ".aws-sam" / "build" / function["CodeUri"]
    assert (code / "app.py").is_file() and (code / "aws_lambda_powertools" / "__init__.py").is_file()
    assert not (code / "defer-runner-layer").exists() and not (code / "handler_lib").exists()
    layer = (project / ".aws-sam" / "build" / built["Resources"]["DeferRunnerLayer"]["Properties"]["ContentUri"])
    assert os.access(layer.resolve() / "extensions" / "defer-runner", os.X_OK)
    # what sam deploy would upload runs: the built folder and the layer, nothing of this virtualenv
    greet_in_the_sandbox(layer.resolve(), code, "app.handler", aws_resources().queue_url, tmp_path)


def test_the_repositorys_template_builds_the_fastapi_function_without_npm(sam_cli: Path, layer_dir: Path,
                                                                          tmp_path: Path) -> None:
    project = tmp_path / "lambda-defer-sam"
    (project / "examples").mkdir(parents=True)
    shutil.copy(REPO / "template.yaml", project)
    shutil.copytree(REPO / "examples" / "fastapi", project / "examples" / "fastapi")
    shutil.copytree(layer_dir, project / "dist" / "layer", symlinks=True)
    # the orders API's zip as docs/deploy.md builds it for SAM: build_layer.py, no npm
    run([sys.executable, "scripts/build_layer.py", "--function-src", "examples/api_gateway",
         "--function-requirements", "layer/requirements-example.txt",
         "--function-zip", str(project / "dist" / "example-api.zip")])
    built = sam_build(sam_cli, project)
    fastapi = built["Resources"]["FastapiFunction"]["Properties"]
    assert fastapi["Layers"] == [{"Ref": "DeferRunnerLayer"}] and fastapi["Handler"] == "app.handler"
    code = project / ".aws-sam" / "build" / fastapi["CodeUri"]
    for module in ("app.py", "fastapi/__init__.py", "mangum/__init__.py"):
        assert (code / module).is_file(), module
    with zipfile.ZipFile(project / "dist" / "example-api.zip") as zf:
        assert "app.py" in zf.namelist()
