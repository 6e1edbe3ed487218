"""A user's own function packaged the way users do it today, from a folder outside the
repository: osls with serverless-python-requirements, the defer-runner layer as a `path`,
and no AWS account (scripts/with-local-aws.sh, the offline/CI recipe of docs/deploy.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO, greet_in_the_sandbox, run, unpack

pytestmark = pytest.mark.timeout(900)

EXAMPLE = REPO / "examples" / "own_function"
NPM_STAMP = "node_modules/.lambda-defer-npm-ci"


@pytest.fixture(scope="module")
def packaged(layer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`serverless package --stage offline` of examples/own_function, copied to a temp folder."""
    run(["make", NPM_STAMP], env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")})
    project = tmp_path_factory.mktemp("own-function-sls")
    assert not project.is_relative_to(REPO)
    shutil.copytree(EXAMPLE / "greetings", project / "greetings")
    for name in ("serverless.yml", "package.json"):
        shutil.copy(EXAMPLE / name, project)
    shutil.copy(REPO / "scripts" / "with-local-aws.sh", project)
    shutil.copytree(layer_dir, project / "defer-runner-layer", symlinks=True)
    # The project's `npm install` of the same pins (checked below), without downloading them again.
    (project / "node_modules").symlink_to(REPO / "node_modules")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAKE"))}
    env["MOTO_PYTHON"] = sys.executable
    proc = subprocess.run(["./with-local-aws.sh", "node_modules/.bin/serverless", "package", "--stage", "offline"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    return project / ".serverless"


def test_the_example_pins_what_the_repository_installs() -> None:
    ours = json.loads((REPO / "package.json").read_text())["devDependencies"]
    theirs = json.loads((EXAMPLE / "package.json").read_text())["devDependencies"]
    assert theirs == ours


def test_the_function_zip_holds_the_code_and_its_requirements(packaged: Path) -> None:
    with zipfile.ZipFile(packaged / "greetings.zip") as zf:
        names = set(zf.namelist())
    assert "greetings/app.py" in names
    assert "aws_lambda_powertools/__init__.py" in names
    assert not {n for n in names if n.startswith(("defer-runner-layer/", "node_modules/", "handler_lib/"))}
    assert "with-local-aws.sh" not in names


def test_the_layer_zip_holds_the_extension(packaged: Path) -> None:
    with zipfile.ZipFile(packaged / "deferRunner.zip") as zf:
        launcher = zf.getinfo("extensions/defer-runner")
        assert (launcher.external_attr >> 16) & 0o777 == 0o755
        assert "python/handler_lib/__init__.py" in zf.namelist()


def test_the_template_attaches_the_layer(packaged: Path) -> None:
    resources = json.loads((packaged / "cloudformation-template-update-stack.json").read_text())["Resources"]
    function = resources["GreetLambdaFunction"]["Properties"]
    assert resources["DeferRunnerLambdaLayer"]["Type"] == "AWS::Lambda::LayerVersion"
    assert function["Layers"] == [{"Ref": "DeferRunnerLambdaLayer"}]
    assert (function["Handler"], function["Runtime"]) == ("greetings/app.handler", "python3.12")


def test_the_packaged_function_runs_with_the_packaged_layer(packaged: Path, aws_resources, tmp_path: Path) -> None:
    layer = unpack(packaged / "deferRunner.zip", tmp_path / "opt")
    task = unpack(packaged / "greetings.zip", tmp_path / "task")
    greet_in_the_sandbox(layer, task, "greetings/app.handler", aws_resources().queue_url, tmp_path)
