"""The drain's EMF line is written by the extension itself now, "in Powertools' shape"; with
Powertools Metrics it also obeyed Powertools' switches, which a function sets for all its
processes (the extension shares the function's environment). Found: ``POWERTOOLS_METRICS_DISABLED=true``
(and ``POWERTOOLS_DEV=true`` with it unset, as in local development) no longer turned the
extension's metrics off: each drain still wrote its ``LambdaDefer`` EMF line (custom metrics,
billed). The rules are Powertools' ``is_metrics_disabled``.

Real processes: the layer's launcher (dist/layer, `make layer`) against bench's Extensions API
stub; a function-side process defers a task over the real socket, so the drain has something
to report.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from bench.common import LAYER, child_env
from bench.ext_stub import RealExtension

TASKS = """
from handler_lib import defer


@defer.task
def touch(path):
    open(path, "w").close()
"""


def _drain_lines(tmp_path: Path, env: Dict[str, str]) -> list:
    task_root = tmp_path / "task"
    task_root.mkdir()
    (task_root / "mytasks.py").write_text(TASKS)
    ext = RealExtension(env={"LAMBDA_TASK_ROOT": str(task_root), **env})
    out = tmp_path / "touched"
    try:
        ext.start()
        function = child_env({"DEFER_SOCKET": ext.socket_path, "DEFER_MODE": "extension",
                              "PYTHONPATH": f"{LAYER / 'python'}{os.pathsep}{task_root}"})
        sent = subprocess.run([sys.executable, "-c", f"import mytasks; mytasks.touch.defer({str(out)!r})"],
                              env=function, capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        ext.stub.push_invoke("r1", timeout_s=10)
        assert ext.stub.wait_next_calls(2, 30), ext.log()
        assert out.exists(), ext.log()
        ext.stub.push_shutdown()
        assert ext.proc is not None and ext.proc.wait(10) == 0, ext.log()
        lines = [json.loads(line) for line in Path(ext.log_path).read_text().splitlines() if line.startswith("{")]
    finally:
        ext.stop()
    assert any(line.get("message") == "drain finished" for line in lines), lines
    return [line for line in lines if "_aws" in line]


@pytest.mark.skipif(not (LAYER / "extensions" / "defer-runner").exists(), reason="run `make layer` first")
@pytest.mark.parametrize("env, emitted", [
    ({}, True),
    ({"POWERTOOLS_METRICS_DISABLED": "true"}, False),
    ({"POWERTOOLS_DEV": "1"}, False),
    ({"POWERTOOLS_DEV": "true", "POWERTOOLS_METRICS_DISABLED": "false"}, True),
])
def test_powertools_switches_turn_the_drain_metrics_off(tmp_path, env, emitted):
    emf = _drain_lines(tmp_path, env)
    assert bool(emf) == emitted, emf
    if emitted:
        assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LambdaDefer"
