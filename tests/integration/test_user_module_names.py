"""A function whose own modules have the names the layer's code uses keeps them, and loses nothing.

``extension``, ``wire``, ``journal``, ``drain``, ``config`` and ``sinks`` are common names in a
function's code; the layer's extension has modules of those names. Neither side may see the
other's: the function imports its own, and every item is delivered, inline and by the extension.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lambda_sandbox import Sandbox
from tests.support.moto_server import drain_queue
from tests.support.waiting import wait_until

APP = '''
import json, os, sys

import config, drain, extension, extension.inline, journal, sinks, wire
from handler_lib import defer

import jobs
import extension.work


@defer
def handler(event, context):
    ids = [defer.sqs(os.environ["TEST_QUEUE_URL"], {"n": n, "tag": event["tag"]}) for n in range(3)]
    ids.append(jobs.record.defer(event["tag"]))
    ids.append(extension.work.record.defer(event["tag"] + "-in-extension-package"))
    return {"ids": ids, "sys_path": sys.path,
            "modules": {m.__name__: m.MARK for m in (config, drain, extension, extension.inline,
                                                     journal, sinks, wire)}}
'''

JOBS = '''
import os

import config, wire  # the function's own, in the extension's process too
from handler_lib import defer


@defer.task
def record(tag):
    with open(os.environ["TASK_LOG"], "a") as log:
        log.write(f"{tag} {config.MARK} {wire.MARK}\\n")
'''

WORK = JOBS.replace("import config, wire", "import config, wire, extension")

USER_MODULES = ["config.py", "drain.py", "journal.py", "wire.py", "extension/__init__.py",
                "extension/inline.py", "extension/drain.py", "sinks/__init__.py"]


@pytest.fixture
def function_dir(tmp_path: Path) -> Path:
    root = tmp_path / "function"
    for name in USER_MODULES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"MARK = 'user:{name}'\n")
    (root / "app.py").write_text(APP)
    (root / "jobs.py").write_text(JOBS)
    (root / "extension" / "work.py").write_text(WORK)  # a task inside the function's own `extension`
    return root


@pytest.mark.parametrize("mode", ["inline", "auto"])
def test_a_function_with_its_own_extension_package_keeps_it_and_every_item_lands(
        mode, function_dir, built_layer, aws_resources, tmp_path):
    res = aws_resources()
    task_log = tmp_path / "tasks.log"
    env = {**res.env(), "DEFER_MODE": mode, "TASK_LOG": str(task_log),
           "DEFER_SOCKET": str(tmp_path / "defer.sock"), "DEFER_JOURNAL_DIR": str(tmp_path / "journal")}
    box = Sandbox(built_layer, function_dir, "app.handler", timeout_s=10, env=env).start()
    try:
        result = box.invoke({"tag": mode})
        assert result.status == 200, result.body
        got = result.json()
        assert got["modules"] == {name: f"user:{file}" for name, file in [
            ("config", "config.py"), ("drain", "drain.py"), ("extension", "extension/__init__.py"),
            ("extension.inline", "extension/inline.py"), ("journal", "journal.py"),
            ("sinks", "sinks/__init__.py"), ("wire", "wire.py")]}
        assert not [p for p in got["sys_path"] if "defer-runner" in p], got["sys_path"]
        landed = drain_queue(res.queue_url, 3, timeout=5)
        assert sorted(m["n"] for m in landed) == [0, 1, 2] and {m["tag"] for m in landed} == {mode}
        wait_until(lambda: task_log.exists() and len(task_log.read_text().splitlines()) >= 2, 5,
                   message="the deferred tasks never ran")
        lines = task_log.read_text().splitlines()  # the two tasks run at once: their order is free
        assert len(lines) == 2 and set(lines) == {f"{mode} user:config.py user:wire.py",
                                                  f"{mode}-in-extension-package user:config.py user:wire.py"}
        box.wait_idle()
        logs = "\n".join(line.text for line in box.logs)
        assert "Traceback" not in logs and "ModuleNotFoundError" not in logs, logs
        if mode == "auto":  # delivered by the extension, not by the function
            assert "defer-runner ready" in logs
            assert "runs inline" not in logs and "items itself" not in logs, logs
    finally:
        box.stop()
