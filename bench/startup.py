"""Part 5: start-up and footprint of the defer-runner, and the cost of importing handler_lib.

- ``extension_register_ms``: Popen of the layer's launcher (dist/layer/extensions/defer-runner,
  bash -> python -I bootstrap.py) -> the register request arriving at bench.ext_stub. Median of N.
- ``extension_ready_ms``: the same Popen -> its first ``next`` (on demand: without the AWS SDK,
  which loads once the first event arrives).
- ``extension_peak_rss_mb``: VmHWM of the extension process after it drained 1,000 items
  (sent over its socket by this process through handler_lib, one INVOKE, delivered through the
  fault proxy to moto), read once it called next again. The same run gives the time the
  extension took to load the SDK after that first event (its ``AWS SDK loaded`` log record).
- ``handler_lib_import_ms``: ``from handler_lib import defer`` timed inside a fresh ``python -I -B`` whose
  sys.path has the built layer's python/ as shipped (what /opt/python gives a function). Median of N;
  ``_after_runtime``: once the runtime's own imports are done (``import awslambdaric.bootstrap``);
  ``_without_pyc``: the same without the shipped bytecode; plus the top of ``-X importtime``.
- ``handler_lib_import_and_wrap_ms_after_runtime``: the import and ``@defer`` on a handler (the
  function's whole init for lambda-defer: wrapping loads the dispatcher, codec and socket).
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
# The import and ``@defer`` on a handler, what a function's init runs: wrapping it loads the
# dispatcher, the item checks, the wire codec (msgpack) and the socket, and dials the extension
# (none listens here: DEFER_SOCKET names no socket, so the dial fails at once).
WRAP_PROBE = ("import sys, time; sys.path.insert(0, {path!r}); t = time.perf_counter_ns(); "
              "from handler_lib import defer\n@defer\ndef handler(event, context): pass\n"
              "print((time.perf_counter_ns() - t) / 1e6)")


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
        invoke = DISPATCHER.begin(rid)
        for item in mixed_items(res, items, rid):
            DISPATCHER.submit(item._replace(request_id=rid))
        DISPATCHER.finish(invoke)
        calls_before = len(ext.stub.next_at)
        started = time.monotonic()
        ext.stub.push_invoke(rid, timeout_s=60)
        if not ext.stub.wait_next_calls(calls_before + 1, 60):
            raise RuntimeError(f"the extension did not finish the drain: {ext.log()}")
        drain_ms = (ext.stub.next_at[-1] - started) * 1000
        after = rss_mb(ext.proc.pid)  # type: ignore[union-attr]
        requests = len(proxy.recorded())
        sdk = _log_record(ext.log_path, "AWS SDK loaded")
    finally:
        ext.stop()
        proxy.stop()
        DISPATCHER.reset()
        os.environ.pop("DEFER_SOCKET", None)
        os.environ.pop("DEFER_MODE", None)
    return {"rss_before_mb": before["rss_mb"], "peak_rss_mb": after["peak_rss_mb"], "rss_after_mb": after["rss_mb"],
            "invoke_to_next_ms": round(drain_ms, 1), "aws_requests": requests, "items": items,
            "sdk_loaded_ms": sdk.get("sdk_loaded_ms"), "sdk_ready_ms": sdk.get("sdk_ready_ms"),
            "sdk_clients": sdk.get("clients"),
            "note": "whole extension (stub Extensions API, telemetry not supported as under RIE), AWS calls +20 ms; "
                    "rss_before_mb: at its first next, before the SDK (on demand); sdk_loaded_ms: first event -> "
                    "botocore and its session loaded, sdk_ready_ms: -> the clients the queued items need made"}


def _log_record(path: str, message: str) -> Dict[str, Any]:
    """The extension's first JSON log record with this message ({} when there is none)."""
    import json

    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return {}
    for line in lines:
        if line.startswith("{") and f'"{message}"' in line:
            try:
                return dict(json.loads(line))
            except ValueError:
                continue
    return {}


def _source_only_copy() -> str:
    """The layer's python/ without its bytecode: what an interpreter the build could not
    compile for sees (read-only /opt, so nothing is ever cached: every cold start compiles)."""
    import shutil
    import tempfile

    dest = os.path.join(tempfile.mkdtemp(prefix="defer-bench-py-"), "python")
    shutil.copytree(LAYER / "python", dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _probe(path: str, n: int, prelude: str = "", probe: str = IMPORT_PROBE) -> List[float]:
    times = []
    env = child_env({"DEFER_SOCKET": os.path.join(os.path.dirname(path), "no-extension.sock")})
    for _ in range(n):
        code = prelude + probe.format(path=path)
        out = subprocess.run([PY, "-I", "-B", "-c", code], capture_output=True, text=True,
                             env=env, check=True)
        times.append(float(out.stdout.strip()))
    return times


RUNTIME_PRELUDE = "import awslambdaric.bootstrap; "  # what the runtime has imported before the handler


def import_times(n: int) -> Dict[str, Any]:
    shipped = str(LAYER / "python")  # -B: the probe never writes bytecode into the layer
    source_only = _source_only_copy()
    times = _probe(shipped, n)
    after_runtime = _probe(shipped, n, prelude=RUNTIME_PRELUDE)
    without_pyc = _probe(source_only, n)
    after_runtime_without_pyc = _probe(source_only, n, prelude=RUNTIME_PRELUDE)
    wrap_after_runtime = _probe(shipped, n, prelude=RUNTIME_PRELUDE, probe=WRAP_PROBE)
    trace = subprocess.run([PY, "-I", "-B", "-X", "importtime", "-c",
                            RUNTIME_PRELUDE + f"import sys; sys.path.insert(0, {shipped!r}); from handler_lib import defer"],
                           capture_output=True, text=True, env=child_env(), check=True).stderr
    rows = []
    for line in trace.split("awslambdaric.bootstrap", 1)[-1].splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, cumulative, name = (p.strip() for p in line[len("import time:"):].split("|"))
            rows.append((int(self_us), int(cumulative), name))
    top = sorted(rows, key=lambda r: -r[0])[:12]
    return {"ms": summary(times), "ms_after_awslambdaric_bootstrap_import": summary(after_runtime),
            "ms_without_pyc": summary(without_pyc), "ms_after_runtime_without_pyc": summary(after_runtime_without_pyc),
            "import_and_wrap_ms_after_runtime": summary(wrap_after_runtime),
            "note": "python -I -B, fresh interpreter, the built layer's python/ first on sys.path (with the "
                    ".pyc it ships for the build's interpreters); after_runtime: once awslambdaric.bootstrap "
                    "is imported (the modules the runtime holds when it imports a handler); without_pyc: the "
                    "same files minus __pycache__ (Pythons the build could not compile for); import_and_wrap: "
                    "the import and @defer on a handler, as a function's init runs them (no extension listening)",
            "top_self_us_after_runtime": [{"module": m.strip(), "self_us": s, "cumulative_us": c} for s, c, m in top]}


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
        "handler_lib_import_ms_after_runtime": imp["ms_after_awslambdaric_bootstrap_import"]["p50"],
        "handler_lib_import_ms_without_pyc": imp["ms_without_pyc"]["p50"],
        "handler_lib_import_ms_after_runtime_without_pyc": imp["ms_after_runtime_without_pyc"]["p50"],
        "handler_lib_import_and_wrap_ms_after_runtime": imp["import_and_wrap_ms_after_runtime"]["p50"],
        "startup_detail": {"register_ms": summary([r["register_ms"] for r in reg]),
                           "ready_ms (Popen -> first next; the AWS SDK loads after it)": summary([r["ready_ms"] for r in reg]),
                           "peak_rss_after_drain": rss, "handler_lib_import": imp},
    }
