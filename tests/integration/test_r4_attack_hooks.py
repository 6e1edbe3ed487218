"""Round-4 attacks on @defer.every: a hook that never returns, where no extension holds the
environment (DEFER_MODE=inline, or no defer-runner listening). Each case runs in a fresh
interpreter: hooks register for the whole process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

HOOKS = """\
import threading
from handler_lib import defer

release = threading.Event()
started = []

@defer.every(0.01, run_first=True)
def refresh():
    started.append(1)
    release.wait()  # a refresh whose endpoint never answers

@defer
def handler(event, context):
    return "ok"
"""

SCRIPT = """\
import json, threading, time
from types import SimpleNamespace
import hooks

end = time.monotonic() + 3.0  # the invoke has 3 s left
context = SimpleNamespace(aws_request_id="r-1", get_remaining_time_in_millis=lambda: int((end - time.monotonic()) * 1000))
returned = []
caller = threading.Thread(target=lambda: returned.append(hooks.handler({}, context)), daemon=True)
caller.start()
caller.join(10)  # the bound: well past the invoke's 3 s
print(json.dumps({"returned": returned, "hook_started": len(hooks.started)}))
hooks.release.set()
"""


@pytest.mark.parametrize("how", ["inline-mode", "no-extension"])
def test_r4_a_hook_that_never_returns_does_not_hold_the_invoke_without_an_extension(tmp_path, how):
    (tmp_path / "hooks.py").write_text(HOOKS)
    (tmp_path / "call.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO_ROOT}", "DEFER_INLINE_BUDGET_MS": "500",
           "DEFER_SOCKET": str(tmp_path / "nobody.sock")}
    env.pop("DEFER_MODE", None)
    if how == "inline-mode":
        env["DEFER_MODE"] = "inline"
    out = subprocess.run([sys.executable, str(tmp_path / "call.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["hook_started"] == 1  # it ran, after the handler ...
    assert result["returned"] == ["ok"], out.stderr  # ... and the handler returned: bounded by the budget
