"""Deferred tasks whose module, or a module they import, has a name the extension's process
already uses (its own ``extension`` package, its ``bootstrap.py``, a package of its ``deps/``).

In the function (inline) the function's module wins, as Python's path order says. In the
extension's process the name is taken: the task then cannot run there, and its dead letter
must say why (the name is the extension's), never that the function's own code is not part
of the function's code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_queue

APP = '''
import importlib
from handler_lib import defer

@defer
def handler(event, context):
    return {"id": importlib.import_module(event["module"]).record.defer(event["tag"])}
'''

TASK = '''
import os
{imports}
from handler_lib import defer

@defer.task
def record(tag):
    with open(os.environ["TASK_LOG"], "a") as log:
        log.write(f"{{tag}} {{MARK}}\\n")
'''

CASES: Dict[str, Tuple[Dict[str, str], str]] = {
    # a task in the function's own package named like the extension's
    "extension_package": ({"extension/__init__.py": "MARK = 'user'\n",
                           "extension/jobs.py": TASK.format(imports="from extension import MARK")},
                          "extension.jobs"),
    # a task module that imports the function's own bootstrap.py (a common name)
    "bootstrap_sibling": ({"bootstrap.py": "MARK = 'user'\n",
                           "jobs.py": TASK.format(imports="from bootstrap import MARK")}, "jobs"),
    # a task module that imports a module of the function's own extension package
    "extension_sibling": ({"extension/__init__.py": "", "extension/helpers.py": "MARK = 'user'\n",
                           "jobs.py": TASK.format(imports="from extension.helpers import MARK")}, "jobs"),
    # a task module that imports the function's own module named like one of the extension's deps
    "deps_sibling": ({"six.py": "MARK = 'user'\n", "jobs.py": TASK.format(imports="from six import MARK")},
                     "jobs"),
}


def invoke_once(tmp_path: Path, built_layer: Path, res, mode: str, case: str) -> Tuple[str, List[dict]]:
    """Run the case's task once in a sandbox; return the task's log and the dead letters."""
    files, module = CASES[case]
    root = tmp_path / "function"
    for name, text in {**files, "app.py": APP}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    task_log = tmp_path / "tasks.log"
    env = {**res.env(), "DEFER_MODE": mode, "TASK_LOG": str(task_log),
           "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, root, "app.handler", timeout_s=10, env=env).start()
    try:
        result = box.invoke({"tag": mode, "module": module})
        assert result.status == 200, result.body
        box.wait_for_report(result.request_id)
        box.wait_idle()
        letters = drain_queue(res.dlq_url, 1, timeout=2)
        return (task_log.read_text() if task_log.exists() else ""), letters
    finally:
        box.stop()


@pytest.mark.parametrize("case", list(CASES))
def test_inline_the_functions_own_module_is_used(case, tmp_path, built_layer, aws_resources):
    log, letters = invoke_once(tmp_path, built_layer, aws_resources(), "inline", case)
    assert (log, letters) == ("inline user\n", [])


def test_a_functions_bootstrap_module_is_its_own_in_the_extension_too(tmp_path, built_layer, aws_resources):
    # The extension's entry file was importable as `bootstrap` in its process: a task module's
    # `from bootstrap import ...` got /opt/defer-runner/bootstrap.py and was dead-lettered.
    log, letters = invoke_once(tmp_path, built_layer, aws_resources(), "auto", "bootstrap_sibling")
    assert (log, letters) == ("auto user\n", [])


@pytest.mark.parametrize("case", ["extension_package", "extension_sibling"])
def test_a_functions_extension_package_is_its_own_in_the_extension_too(case, tmp_path, built_layer, aws_resources):
    # The layer ships the extension's package under a name of its own (_defer_runner).
    log, letters = invoke_once(tmp_path, built_layer, aws_resources(), "auto", case)
    assert (log, letters) == ("auto user\n", [])


@pytest.mark.parametrize("case, name", [("deps_sibling", "six")])
def test_a_name_the_extension_uses_is_dead_lettered_saying_so(case, name, tmp_path, built_layer, aws_resources):
    log, letters = invoke_once(tmp_path, built_layer, aws_resources(), "auto", case)
    assert log == ""
    (letter,) = letters
    assert letter["error"]["code"] == "Defer.TaskNotFound"
    message = letter["error"]["message"]
    # Before: "module extension is not part of the function's code or layers" (it is), or a
    # bare "No module named 'extension.helpers'".
    assert "not part of the function's code" not in message, message
    assert f"the function's module {name} has the name of a module the defer-runner extension uses" in message, \
        message
