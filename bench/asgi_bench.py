"""Part "asgi": a FastAPI route with a 200 ms BackgroundTask in the sandbox, plain Mangum vs ``defer.asgi``.

Per invoke: the response latency the caller sees, and the post-runtime extension duration of
the sandbox's REPORT (the time the environment stays thawed after the response). Under
Mangum the task runs before the response; under ``defer.asgi`` after it.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any, Dict

from .common import LAYER, log, summary
from .sandbox_bench import _env, _invokes


def run(quick: bool = False) -> Dict[str, Any]:
    from examples.api_gateway.http_events import post_order, sample_order

    n = 10 if quick else 30
    out: Dict[str, Any] = {}
    for name, handler in (("mangum", "asgi_app.mangum_handler"), ("defer", "asgi_app.defer_handler")):
        tmp = tempfile.mkdtemp(prefix="defer-bench-")
        log(f"sandbox: {n} invokes of {handler} (+3 warm-up), a 200 ms BackgroundTask each")
        rows = _invokes(LAYER, handler, _env(tmp, {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}), n,
                        payload=lambda i: post_order(sample_order(i)))
        shutil.rmtree(tmp, ignore_errors=True)
        out[name] = {"response_ms": summary([r["response_ms"] for r in rows]),
                     "post_runtime_ms": summary([r["post_runtime_ms"] for r in rows])}
    return {
        "asgi_response_p50_ms_mangum": out["mangum"]["response_ms"]["p50"],
        "asgi_response_p50_ms_defer": out["defer"]["response_ms"]["p50"],
        "asgi_post_runtime_p50_ms_mangum": out["mangum"]["post_runtime_ms"]["p50"],
        "asgi_post_runtime_p50_ms_defer": out["defer"]["post_runtime_ms"]["p50"],
        "asgi_detail": {"background_task_ms": 200, "invokes": n, **out},
    }
