"""Part 5: start-up and footprint of the defer-runner, and the cost of importing handler_lib.

- ``extension_register_ms``: Popen of the layer's launcher (dist/layer/extensions/defer-runner,
  bash -> python -I bootstrap.py) -> the register request arriving at bench.ext_stub. Median of N.
- ``extension_peak_rss_mb``: VmHWM of the extension process after it drained 1,000 items
  (sent over its socket by this process through handler_lib, one INVOKE, delivered through the
  fault proxy to moto), read once it called next again.
- ``handler_lib_import_ms``: ``from handler_lib import defer`` timed inside a fresh ``python -I`` whose
  sys.path has the layer's python/ (what /opt/python gives a function). Median of N;
  plus the top of ``-X importtime`` for the record.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from typing import Any, Dict, List

from .common import LAYER, PY, child_env, log, median, rss_mb, summary
from .ext_stub import RealExtension
from .proxy_proc import ProxyProcess

IMPORT_PROBE = ("import sys, time; sys.path.insert(0, {path!r}); t = time.perf_counter_ns(); "
                "from handler_lib import defer; print((time.perf_counter_ns() - t) / 1e6)")


def register_times(n: int, moto_url: str) -> List[Dict[str, float]]:
    out = []
    for _ in range(n):
        ext = RealExtension({"AWS_ENDPOINT_URL": moto_url}).start()
        out.append({"register_ms": ext.register_ms, "ready_ms": ext.ready_ms})
        ext.stop()
    return out


def peak_rss_after_drain(moto_url: str, items: int = 1000) -> Dict[str, Any]:
    from .drain_bench import make_resources, mixed_items

    proxy = ProxyProcess(moto_url, latency_s=0.020)
    ext = RealExtension({"AWS_ENDPOINT_URL": proxy.endpoint_url}).start()
    try:
        before = rss_mb(ext.proc.pid)  # type: ignore[union-attr]
        res = make_resources(moto_url)
        os.environ["DEFER_SOCKET"] = ext.socket_path
        os.environ["DEFER_MODE"] = "extension"
        from handler_lib._dispatch import DISPATCHER

        DISPATCHER.reset()
        DISPATCHER.wrapped_handler()
        rid = str(uuid.uuid4())
        DISPATCHER.begin(rid)
        for item in mixed_items(res, items, rid):
            DISPATCHER.submit(item._replace(request_id=rid))
        DISPATCHER.end(rid)
        calls_before = len(ext.stub.next_at)
        started = time.monotonic()
        ext.stub.push_invoke(rid, timeout_s=60)
        if not ext.stub.wait_next_calls(calls_before + 1, 60):
            raise RuntimeError(f"the extension did not finish the drain: {ext.log()}")
        drain_ms = (ext.stub.next_at[-1] - started) * 1000
        after = rss_mb(ext.proc.pid)  # type: ignore[union-attr]
        requests = len(proxy.recorded())
    finally:
        ext.stop()
        proxy.stop()
        DISPATCHER.reset()
        os.environ.pop("DEFER_SOCKET", None)
        os.environ.pop("DEFER_MODE", None)
    return {"rss_before_mb": before["rss_mb"], "peak_rss_mb": after["peak_rss_mb"], "rss_after_mb": after["rss_mb"],
            "invoke_to_next_ms": round(drain_ms, 1), "aws_requests": requests, "items": items,
            "note": "whole extension (stub Extensions API, telemetry not supported as under RIE), AWS calls +20 ms"}


def _layer_copy(compiled: bool) -> str:
    """The layer's python/ as Lambda sees it: read-only, so no bytecode is ever cached unless shipped."""
    import compileall
    import shutil
    import tempfile

    dest = os.path.join(tempfile.mkdtemp(prefix="defer-bench-py-"), "python")
    shutil.copytree(LAYER / "python", dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if compiled:
        compileall.compile_dir(dest, quiet=1)
    return dest


def _probe(path: str, n: int, prelude: str = "") -> List[float]:
    times = []
    for _ in range(n):
        code = prelude + IMPORT_PROBE.format(path=path)
        out = subprocess.run([PY, "-I", "-B", "-c", code], capture_output=True, text=True,
                             env=child_env(), check=True)
        times.append(float(out.stdout.strip()))
    return times


def import_times(n: int) -> Dict[str, Any]:
    as_shipped = _layer_copy(compiled=False)  # the layer is built without bytecode
    path = _layer_copy(compiled=True)
    times = _probe(path, n)
    shipped = _probe(as_shipped, n)
    after_runtime = _probe(path, n, prelude="import awslambdaric.bootstrap; ")
    trace = subprocess.run([PY, "-I", "-X", "importtime", "-c", f"import sys; sys.path.insert(0, {path!r}); from handler_lib import defer"],
                           capture_output=True, text=True, env=child_env(), check=True).stderr
    rows = []
    for line in trace.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, cumulative, name = (p.strip() for p in line[len("import time:"):].split("|"))
            rows.append((int(self_us), int(cumulative), name))
    top = sorted(rows, key=lambda r: -r[0])[:12]
    return {"ms": summary(times), "ms_as_shipped_without_pyc": summary(shipped),
            "ms_after_awslambdaric_bootstrap_import": summary(after_runtime),
            "note": "python -I -B, fresh interpreter, layer python/ first on sys.path; 'ms' has .pyc "
                    "compiled (as Lambda would see a layer that ships them); the built layer ships none, so "
                    "on read-only /opt every cold start compiles: ms_as_shipped_without_pyc",
            "top_self_us": [{"module": m.strip(), "self_us": s, "cumulative_us": c} for s, c, m in top]}


def run(moto_url: str, quick: bool = False) -> Dict[str, Any]:
    n = 5 if quick else 11
    log(f"start-up: {n} extension starts (register time), handler_lib import x {3 * n}, peak RSS after 1,000 items")
    reg = register_times(n, moto_url)
    imp = import_times(3 * n)
    rss = peak_rss_after_drain(moto_url)
    return {
        "extension_register_ms": round(median(r["register_ms"] for r in reg), 2),
        "extension_ready_ms": round(median(r["ready_ms"] for r in reg), 2),
        "extension_peak_rss_mb": rss["peak_rss_mb"],
        "handler_lib_import_ms": imp["ms"]["p50"],
        "handler_lib_import_ms_as_shipped": imp["ms_as_shipped_without_pyc"]["p50"],
        "handler_lib_import_ms_after_runtime": imp["ms_after_awslambdaric_bootstrap_import"]["p50"],
        "startup_detail": {"register_ms": summary([r["register_ms"] for r in reg]),
                           "ready_ms (register + boto3/powertools set-up -> first next)": summary([r["ready_ms"] for r in reg]),
                           "peak_rss_after_drain": rss, "handler_lib_import": imp},
    }
