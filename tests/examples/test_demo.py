"""`make demo` end to end, small: it must exit 0 only when every deferred item landed."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_the_demo_runs_and_reports_every_item_landed(built_layer, tmp_path):
    plot = tmp_path / "timeline.png"
    # A subprocess, as `make demo` runs it (inside pytest, `examples` is the test package).
    proc = subprocess.run([sys.executable, "-m", "examples.api_gateway.demo", "--requests", "3", "--plot", str(plot)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "every deferred item landed" in proc.stdout
    assert "side effects landed 18/18" in proc.stdout  # deferred and inline: 3 orders x 6 effects (2 are DB changes)
    # and the queued task of each order ran in the second function (the worker), in both modes
    assert proc.stdout.count("queued task archive_invoice: 3 deferred to the invoices queue, 3 run by the worker "
                             "function (handler_lib.worker), 3 invoices in S3") == 2
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_fastapi_demo_shows_each_background_task_done_after_its_response(built_layer):
    proc = subprocess.run([sys.executable, "-m", "examples.fastapi.demo", "--requests", "2"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "every BackgroundTask ran after its response and its message landed" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip().startswith("#")]
    assert len(rows) == 2
    for _, response_ms, _, done_ms, landed_ms, _, _ in rows:
        assert float(response_ms) < float(done_ms) and float(response_ms) < float(landed_ms)  # after the answer
