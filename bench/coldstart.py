"""Part 7: what a user pays for the layer, in the local sandbox (init on the first invoke).

- ``init_extra_ms``: Init Duration (REPORT of the first invoke) of ``cold_defer.handler`` (a small
  Powertools function that defers 5 items, with the layer) minus that of ``cold_plain.handler``
  (the same function without lambda-defer, no layer). Fresh environments, the two alternated,
  median of each.
- ``first_drain_extra_ms``: in each fresh ``cold_defer`` environment, the Post Runtime Extensions
  Duration of the first invoke (the first drain: 5 mixed items) minus the median of the next
  warm invokes' (the same 5 items). Median over environments. AWS calls +20 ms (fault proxy).
- ``billed_ratio_deferred_to_inline``: Billed Duration per warm ``POST /orders`` of the example
  (examples/api_gateway) with its side effects deferred, over the same with ``DEFER_MODE=inline``;
  AWS calls +20 ms. Billed Duration covers the post-runtime drain (as on Lambda).
  ``_no_extension``: over inline with no extension at all (the layer's python/ only).
- bench/coldstart.png: cold vs warm invoke, init vs response vs post-runtime, with and without.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

from .common import AWS_ENV, BENCH, LAYER, bench_functions, example_api, log, median, summary
from .proxy_proc import ProxyProcess
from .sandbox_bench import _resources


def _cold_env(tmp: str, extra: Dict[str, str]) -> Dict[str, str]:
    return {**AWS_ENV, "DEFER_SOCKET": os.path.join(tmp, "defer.sock"),
            "DEFER_JOURNAL_DIR": os.path.join(tmp, "journal"), **extra}


def _phases(report: Any, response_ms: float) -> Dict[str, float]:
    """One invoke's REPORT as the three parts a user waits for or pays for."""
    return {"init_ms": report.init_ms or 0.0, "response_ms": round(response_ms, 2),
            "runtime_ms": round(report.duration_ms - report.post_runtime_extensions_ms, 2),
            "post_runtime_ms": report.post_runtime_extensions_ms, "duration_ms": report.duration_ms,
            "billed_ms": report.billed_ms}


def one_environment(opt: Path, handler: str, env: Dict[str, str], warm: int) -> List[Dict[str, float]]:
    """A fresh environment: the cold invoke (init + first drain), then ``warm`` warm ones."""
    from lambda_sandbox import Sandbox

    rows = []
    with Sandbox(opt, bench_functions(), handler, timeout_s=10, memory_mb=256, env=env, echo=False) as box:
        for i in range(1 + warm):
            sent = time.monotonic()
            result = box.invoke({"i": i})
            got = time.monotonic()
            if result.status != 200 or result.function_error:
                raise RuntimeError(f"{handler} failed: {result.status} {result.body[:500]!r}\n"
                                   + "\n".join(box.logs[-30:]))
            rows.append(_phases(box.wait_for_report(result.request_id), (got - sent) * 1000))
    return rows


def cold_starts(moto_url: str, quick: bool) -> Dict[str, Any]:
    rounds, warm = (5, 3) if quick else (11, 4)
    res = _resources(moto_url)
    proxy = ProxyProcess(moto_url, latency_s=0.020)
    empty_opt = Path(tempfile.mkdtemp(prefix="defer-bench-noopt-"))
    runs: Dict[str, List[List[Dict[str, float]]]] = {"with_layer": [], "without_layer": []}
    log(f"cold start: {rounds} fresh environments with the layer and {rounds} without, {warm} warm invokes each")
    try:
        for _ in range(rounds):
            for mode, opt, handler in (("without_layer", empty_opt, "cold_plain.handler"),
                                       ("with_layer", LAYER, "cold_defer.handler")):
                tmp = tempfile.mkdtemp(prefix="defer-bench-")
                env = _cold_env(tmp, {**res, "AWS_ENDPOINT_URL": proxy.endpoint_url})
                runs[mode].append(one_environment(opt, handler, env, warm))
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        proxy.stop()
        shutil.rmtree(empty_opt, ignore_errors=True)
    init = {m: [env[0]["init_ms"] for env in envs] for m, envs in runs.items()}
    extra_drain = [env[0]["post_runtime_ms"] - median(r["post_runtime_ms"] for r in env[1:])
                   for env in runs["with_layer"]]

    def typical(mode: str, cold: bool) -> Dict[str, float]:
        rows = [env[0] for env in runs[mode]] if cold else [r for env in runs[mode] for r in env[1:]]
        return {k: round(median(r[k] for r in rows), 2) for k in rows[0]}

    picture = {m: {"cold": typical(m, True), "warm": typical(m, False)} for m in runs}
    return {
        "init_extra_ms": round(median(init["with_layer"]) - median(init["without_layer"]), 1),
        "first_drain_extra_ms": round(median(extra_drain), 1),
        "coldstart_detail": {
            "environments_per_mode": rounds, "warm_invokes_per_environment": warm, "aws_latency_ms": 20,
            "init_ms": {m: summary(v, 2) for m, v in init.items()},
            "first_drain_extra_ms": summary(extra_drain, 2),
            "first_drain_ms": summary([env[0]["post_runtime_ms"] for env in runs["with_layer"]], 2),
            "typical_invoke": picture,
            "note": "lambda_sandbox, init on the first invoke, 256 MB; without_layer: cold_plain.handler and "
                    "no /opt; with_layer: cold_defer.handler (5 items deferred per invoke) and dist/layer",
        },
    }


def billed_ratio(moto_url: str, quick: bool) -> Dict[str, Any]:
    from examples.api_gateway import demo_aws
    from examples.api_gateway.http_events import post_order, sample_order
    from lambda_sandbox import Sandbox

    n = 15 if quick else 40
    proxy = ProxyProcess(moto_url, latency_s=0.020)
    rows: Dict[str, List[Dict[str, float]]] = {}
    no_extension = Path(tempfile.mkdtemp(prefix="defer-bench-opt-"))  # the layer's python/ only
    shutil.copytree(LAYER / "python", no_extension / "python")
    try:
        for mode, opt in (("deferred", LAYER), ("inline", LAYER), ("inline_no_extension", no_extension)):
            res = demo_aws.create_resources(moto_url, f"bench-{mode}-{int(time.time() * 1000)}")
            tmp = tempfile.mkdtemp(prefix="defer-bench-")
            env = {**_cold_env(tmp, {**res.function_env(), "AWS_ENDPOINT_URL": proxy.endpoint_url}),
                   "DATABASE_URL": f"sqlite:///{tmp}/orders.db", "DEFER_MODE": "auto" if mode == "deferred" else "inline",
                   "POWERTOOLS_SERVICE_NAME": "orders", "POWERTOOLS_METRICS_NAMESPACE": "Bench",
                   "POWERTOOLS_LOG_LEVEL": "WARNING"}
            log(f"billing: {n} warm POST /orders of the example, side effects {mode}, AWS calls +20 ms")
            rows[mode] = []
            with Sandbox(opt, example_api(), "app.handler", timeout_s=10, memory_mb=512, env=env, echo=False) as box:
                for i in range(3 + n):
                    sent = time.monotonic()
                    result = box.invoke(post_order(sample_order(i)))
                    got = time.monotonic()
                    if result.status != 200 or result.json().get("statusCode") != 201:
                        raise RuntimeError(f"POST /orders ({mode}) failed: {result.body[:500]!r}")
                    report = box.wait_for_report(result.request_id)
                    if i >= 3:
                        rows[mode].append(_phases(report, (got - sent) * 1000))
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        proxy.stop()
        shutil.rmtree(no_extension, ignore_errors=True)
    billed = {m: median(r["billed_ms"] for r in v) for m, v in rows.items()}
    return {
        "billed_ratio_deferred_to_inline": round(billed["deferred"] / billed["inline"], 3),
        "billed_ratio_deferred_to_inline_no_extension": round(billed["deferred"] / billed["inline_no_extension"], 3),
        "billed_detail": {
            "invokes": n, "aws_latency_ms": 20, "memory_mb": 512,
            **{m: {k: summary([r[k] for r in v], 2) for k in ("billed_ms", "response_ms", "runtime_ms",
                                                                "post_runtime_ms")} for m, v in rows.items()},
            "note": "examples/api_gateway app.handler, POST /orders (SQLite write, 3 side effects + a task); "
                    "billed = ceil(Duration), which runs until the last extension calls next; inline: "
                    "DEFER_MODE=inline with the layer (its extension still waits for the end of each invoke); "
                    "inline_no_extension: the layer's python/ only, no extension (a function without lambda-defer)",
        },
    }


def coldstart_png(typical: Dict[str, Dict[str, Dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, init, runtime, post = [], [], [], []
    for mode, title in (("without_layer", "without the layer"), ("with_layer", "with the layer")):
        for phase in ("cold", "warm"):
            row = typical[mode][phase]
            labels.append(f"{phase} invoke\n{title}")
            init.append(row["init_ms"] if phase == "cold" else 0.0)
            runtime.append(row["runtime_ms"])
            post.append(row["post_runtime_ms"])
    fig, ax = plt.subplots(figsize=(10, 4.8))
    y = list(range(len(labels)))
    ax.barh(y, init, color="#8172B2", label="init (Init Duration)")
    ax.barh(y, runtime, left=init, color="#4C72B0", label="runtime: request -> response (Duration)")
    ax.barh(y, post, left=[a + b for a, b in zip(init, runtime)], color="#DD8452",
            label="post-runtime: the extension drains (Duration, billed)")
    for k in y:
        total = init[k] + runtime[k] + post[k]
        ax.text(total + 5, k, f"{total:.0f} ms", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms (medians; lambda_sandbox, init on the first invoke, 5 items per invoke, AWS calls +20 ms)")
    ax.set_title("A small Powertools function: cold vs warm invoke, with and without lambda-defer")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(moto_url: str, quick: bool = False) -> Dict[str, Any]:
    results = cold_starts(moto_url, quick)
    results.update(billed_ratio(moto_url, quick))
    coldstart_png(results["coldstart_detail"]["typical_invoke"], BENCH / "coldstart.png")
    return results
