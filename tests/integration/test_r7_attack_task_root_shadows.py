"""The sandbox's package view, as on Lambda the task root comes first.

Held: a function that ships its own boto3 imports that one, not the runtime's pinned 1.44.8; a
package the function did not ship fails with Runtime.ImportModuleError naming it.
Found: a function that bundles lambda-defer (`lambda-defer` in its requirements.txt, which
docs/deploy.md warns against) imports its own `handler_lib` from /var/task instead of the
layer's, silently: nothing in the logs said the layer's copy was shadowed. It now logs one line
at import saying so."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from lambda_sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
APP = """
import json, boto3, handler_lib
from handler_lib import defer
@defer
def handler(event, context):
    return {"boto3": boto3.__version__, "boto3_file": boto3.__file__, "handler_lib": handler_lib.__file__}
"""


def test_the_task_roots_boto3_and_handler_lib_come_first_and_a_shadowed_layer_is_said(
        built_layer: Path, tmp_path: Path) -> None:
    task = tmp_path / "task"
    (task / "boto3").mkdir(parents=True)
    (task / "boto3" / "__init__.py").write_text("__version__ = '9.9.9'\n")  # the function's own pin
    shutil.copytree(REPO / "handler_lib", task / "handler_lib",
                    ignore=shutil.ignore_patterns("__pycache__"))  # a bundled lambda-defer
    (task / "app.py").write_text(APP)
    (task / "broken.py").write_text("import not_shipped_pkg\ndef handler(e, c):\n    return 1\n")
    with Sandbox(built_layer, task, "app.handler", timeout_s=10, echo=False,
                 env={"DEFER_MODE": "inline"}) as box:
        result = box.invoke({})
        body = json.loads(result.body)
        assert body["boto3"] == "9.9.9" and body["boto3_file"] == "/var/task/boto3/__init__.py", body
        assert body["handler_lib"] == "/var/task/handler_lib/__init__.py", body
        box.wait_for_report(result.request_id)
        logs = "\n".join(line.text for line in box.logs if line.source == "function")
        assert "handler_lib" in logs and "/opt/python/handler_lib" in logs and "shadow" in logs, logs
    with Sandbox(built_layer, task, "broken.handler", timeout_s=10, echo=False) as box:
        result = box.invoke({})
        text = result.body.decode()
        assert "Runtime.ImportModuleError" in text and "not_shipped_pkg" in text, text


def test_the_layers_own_handler_lib_says_nothing(built_layer: Path, tmp_path: Path) -> None:
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text(APP)
    with Sandbox(built_layer, task, "app.handler", timeout_s=10, echo=False,
                 env={"DEFER_MODE": "inline"}) as box:
        result = box.invoke({})
        assert json.loads(result.body)["handler_lib"] == "/opt/python/handler_lib/__init__.py"
        box.wait_for_report(result.request_id)
        assert not [line.text for line in box.logs if "shadows" in line.text]
