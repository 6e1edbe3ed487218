"""`python -m lambda_sandbox` as users and `make demo` run it: a parseable startup line,
RIE's invoke endpoint, START/END/REPORT and extension output on stdout, clean SIGTERM."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import List

from lambda_sandbox import Report
from lambda_sandbox.testing import LambdaDirs
from tests.support.waiting import wait_until

STARTUP = re.compile(r"lambda_sandbox listening on 127\.0\.0\.1:(\d+) runtime-api 127\.0\.0\.1:(\d+)")


def _descendants(pid: int) -> List[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                kids = [int(k) for k in children.read_text().split()]
            except OSError:
                continue
            found.extend(kids)
            stack.extend(kids)
    return found


def test_cli_serves_invokes_and_stops_cleanly(lambda_dirs: LambdaDirs) -> None:
    lambda_dirs.function("""
        def handler(event, context):
            print("handled", event["n"])
            return {"n": event["n"]}
    """)
    records = lambda_dirs.recording_extension("ext")
    (lambda_dirs.opt / "extensions" / "a-directory").mkdir()  # not launched, as in Lambda and RIE
    proc = subprocess.Popen(
        [sys.executable, "-m", "lambda_sandbox", "--opt", str(lambda_dirs.opt), "--task", str(lambda_dirs.task),
         "--handler", "app.handler", "--timeout", "5", "--memory", "256", "--port", "0",
         "--share", str(lambda_dirs.root)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    lines: List[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    try:
        match = wait_until(lambda: next((m for m in map(STARTUP.search, lines) if m), None), 15,
                           message=lambda: "no startup line:\n" + "".join(lines))
        port = int(match.group(1))
        for n in range(2):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations",
                                             data=json.dumps({"n": n}).encode(), method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                assert json.loads(response.read()) == {"n": n}
        reports = wait_until(lambda: [l for l in lines if l.startswith("REPORT ")][:2] if
                             len([l for l in lines if l.startswith("REPORT ")]) >= 2 else None, 10,
                             message=lambda: "".join(lines))
        parsed = [Report.parse(line.rstrip("\n")) for line in reports]
        assert parsed[0].init_ms is not None and parsed[1].init_ms is None
        assert all(r.memory_mb == 256 for r in parsed)
        assert any(line.startswith("START RequestId: ") for line in lines)
        assert any(line.strip() == "handled 1" for line in lines)
        assert any(line.strip() == "[ext] recording extension ext started" for line in lines)
        children = _descendants(proc.pid)
        assert children
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
    assert code == 0
    assert records.events("SHUTDOWN")[0]["shutdownReason"] == "spindown"
    assert not [pid for pid in children if os.path.exists(f"/proc/{pid}")]
