"""Several layers merged into /opt in order (later wins, as Lambda merges a function's layers;
`--opt` repeatable), and the invoke header X-Amz-Tenant-Id reaching the runtime as Lambda
passes it (`Lambda-Runtime-Aws-Tenant-Id`, awslambdaric's `context.tenant_id`)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import List

import pytest

from lambda_sandbox import SandboxConfigError
from lambda_sandbox.layers import merge_layers
from lambda_sandbox.testing import LambdaDirs
from tests.support.waiting import wait_until

STARTUP = re.compile(r"lambda_sandbox listening on 127\.0\.0\.1:(\d+)")


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, newline="\n")
    path.chmod(mode)
    return path


def test_layers_merge_in_order_and_the_later_wins(tmp_path: Path) -> None:
    first, second, merged = tmp_path / "first", tmp_path / "second", tmp_path / "merged"
    write(first / "python" / "shared.py", "WHO = 'first'\n")
    write(first / "python" / "only_first.py", "X = 1\n")
    write(first / "bin" / "tool", "#!/bin/sh\necho first\n", 0o755)
    write(first / "data", "a file in the first layer\n")
    write(second / "python" / "shared.py", "WHO = 'second'\n")
    write(second / "bin" / "tool", "#!/bin/sh\necho second\n", 0o750)
    write(second / "data" / "inside", "a folder in the second layer\n")
    os.symlink("../python/shared.py", second / "bin" / "link")
    merged.mkdir()
    merge_layers([first, second], merged)
    assert (merged / "python" / "shared.py").read_text() == "WHO = 'second'\n"
    assert (merged / "python" / "only_first.py").exists()
    assert (merged / "bin" / "tool").read_text().endswith("second\n")
    assert (merged / "bin" / "tool").stat().st_mode & 0o777 == 0o750  # the mode it shipped with
    assert (merged / "data" / "inside").is_file()  # a later folder replaces an earlier file
    assert os.readlink(merged / "bin" / "link") == "../python/shared.py"
    assert (first / "python" / "shared.py").read_text() == "WHO = 'first'\n"  # the layers are untouched
    with pytest.raises(SandboxConfigError, match="is not a directory"):
        merge_layers([first, tmp_path / "missing"], tmp_path / "merged-2")


def test_two_layers_on_the_command_line_become_one_opt(lambda_dirs: LambdaDirs, tmp_path: Path) -> None:
    lambda_dirs.function("""
        import os, shared, only_first
        def handler(event, context):
            return {"who": shared.WHO, "first": only_first.X,
                    "tenant": getattr(context, "tenant_id", None),
                    "extensions": sorted(os.listdir(os.path.join(os.path.dirname(shared.__file__), "..", "extensions")))}
    """)
    write(lambda_dirs.opt / "python" / "shared.py", "WHO = 'first'\n")
    write(lambda_dirs.opt / "python" / "only_first.py", "X = 1\n")
    second = tmp_path / "second"
    write(second / "python" / "shared.py", "WHO = 'second'\n")
    (second / "extensions").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lambda_sandbox", "--opt", str(lambda_dirs.opt), "--opt", str(second),
         "--task", str(lambda_dirs.task), "--handler", "app.handler", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=Path(__file__).resolve().parents[2])
    lines: List[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    try:
        match = wait_until(lambda: next((m for m in map(STARTUP.search, lines) if m), None), 15,
                           message=lambda: "no startup line:\n" + "".join(lines))
        linked = (lambda_dirs.opt / "python" / "only_first.py").stat().st_nlink  # 2: the merge links to it
        url = f"http://127.0.0.1:{match.group(1)}/2015-03-31/functions/function/invocations"
        request = urllib.request.Request(url, data=b"{}", method="POST", headers={"X-Amz-Tenant-Id": "acme-1"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
    assert answer == {"who": "second", "first": 1, "tenant": "acme-1", "extensions": []}
    assert code == 0
    # the merged /opt was the sandbox's own folder, gone with it (no link to the layer's file left)
    assert (linked, (lambda_dirs.opt / "python" / "only_first.py").stat().st_nlink) == (2, 1)


def test_the_tenant_header_reaches_the_handler_and_a_bad_one_is_refused(lambda_dirs: LambdaDirs,
                                                                         sandbox_factory) -> None:
    lambda_dirs.function("""
        def handler(event, context):
            return {"tenant": context.tenant_id}
    """)
    box = sandbox_factory(lambda_dirs)
    assert box.invoke({}, headers={"X-Amz-Tenant-Id": "tenant/a=b+c@d e.f:g_h-i"}).json() == {
        "tenant": "tenant/a=b+c@d e.f:g_h-i"}
    assert box.invoke({}).json() == {"tenant": None}  # no header, no tenant: as before
    refused = box.invoke({}, headers={"X-Amz-Tenant-Id": "bad|tenant"})
    assert refused.status == 400 and refused.headers.get("x-amzn-ErrorType") == "InvalidParameterValueException"
    assert "is not a tenant id" in refused.json()["message"]
    assert box.invoke({}, headers={"X-Amz-Tenant-Id": "t" * 257}).status == 400


def test_merged_layers_are_removed_with_the_sandbox(lambda_dirs: LambdaDirs, tmp_path: Path, sandbox_factory) -> None:
    lambda_dirs.function("""
        import marker
        def handler(event, context):
            return marker.WHERE
    """)
    second = tmp_path / "second"
    write(second / "python" / "marker.py", "WHERE = 'second layer'\n")
    box = sandbox_factory([lambda_dirs.opt, second], lambda_dirs.task, share=[lambda_dirs.root])
    merged = box.config.opt_dir
    assert box.invoke({}).json() == "second layer" and merged.is_dir() and merged != lambda_dirs.opt
    box.stop()
    assert not merged.exists()
