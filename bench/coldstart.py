"""Part 7: what a user pays for the layer, in the local sandbox (init on the first invoke), at
512 MB and at 1,769 MB with Lambda's memory-proportional CPU where the host allows it
(``lambda_sandbox --cpu auto``: 0.289 and 1 vCPU; ``coldstart_detail.cpu_limit`` says what was
in force). Keys without a suffix are the 512 MB figures; ``*_1769mb`` the same at 1,769 MB.

Three small Powertools functions, fresh environments, alternated plain, inline, deferred:
``cold_plain`` (publishes nothing, no layer), ``cold_inline`` (publishes 5 items inline with boto3,
clients made at init, as users write it; no layer), ``cold_defer`` (defers the same 5 items, with
the layer). AWS calls +20 ms (fault proxy).

- ``init_extra_ms``: Init Duration of ``cold_defer`` minus that of ``cold_plain`` (medians).
- ``cold_response_ratio_to_inline``: the cold invoke's response time (request to response, init
  included) of ``cold_defer`` over ``cold_inline``'s (medians).
- ``first_drain_extra_ms``: in each fresh ``cold_defer`` environment, the Post Runtime Extensions
  Duration of the first invoke minus the median of its warm invokes'. Median over environments.
- ``warm_billed_ratio_to_inline``: Billed Duration of a warm ``cold_defer`` invoke over a warm
  ``cold_inline`` one (medians).
- ``billed_ratio_deferred_to_inline``: Billed Duration per warm ``POST /orders`` of the example
  (examples/api_gateway, 3 side effects and a task) with its side effects deferred, over the same
  with ``DEFER_MODE=inline``; ``_no_extension``: over inline with no extension at all (the
  layer's python/ only). Billed Duration covers the post-runtime drain (as on Lambda).
- ``effects_and_task_post_runtime_ms``: Post Runtime Extensions Duration of a warm invoke of
  ``app.effects_and_task`` (3 side effects, SQS, SNS and EventBridge, and a small task): what the
  drain after a response takes when all of it can overlap; its floor is one AWS round trip (20 ms).
- bench/coldstart.png: cold vs warm invoke at 512 MB, init vs response vs post-runtime;
- bench/billing.png: the example's warm invoke per mode at both sizes, runtime vs post-runtime.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

from .common import AWS_ENV, BENCH, LAYER, bench_functions, example_api, log, median, summary
from .proxy_proc import ProxyProcess
from .sandbox_bench import _resources

SIZES = (512, 1769)
#: name -> (with the layer, handler)
COLD_FUNCTIONS = {"plain": (False, "cold_plain.handler"), "inline": (False, "cold_inline.handler"),
                  "defer": (True, "cold_defer.handler")}


def _suffix(memory_mb: int) -> str:
    return "" if memory_mb == SIZES[0] else f"_{memory_mb}mb"


def _cold_env(tmp: str, extra: Dict[str, str]) -> Dict[str, str]:
    return {**AWS_ENV, "DEFER_SOCKET": os.path.join(tmp, "defer.sock"),
            "DEFER_JOURNAL_DIR": os.path.join(tmp, "journal"), **extra}


def _phases(report: Any, response_ms: float) -> Dict[str, float]:
    """One invoke's REPORT as the three parts a user waits for or pays for."""
    return {"init_ms": report.init_ms or 0.0, "response_ms": round(response_ms, 2),
            "runtime_ms": round(report.duration_ms - report.post_runtime_extensions_ms, 2),
            "post_runtime_ms": report.post_runtime_extensions_ms, "duration_ms": report.duration_ms,
            "billed_ms": report.billed_ms}


def _sandbox(opt: Path, task: Path, handler: str, env: Dict[str, str], memory_mb: int) -> Any:
    from lambda_sandbox import Sandbox

    return Sandbox(opt, task, handler, timeout_s=30, memory_mb=memory_mb, env=env, echo=False, cpu="auto")


def one_environment(opt: Path, handler: str, env: Dict[str, str], warm: int,
                    memory_mb: int) -> Tuple[List[Dict[str, float]], str]:
    """A fresh environment: the cold invoke (init + first drain), then ``warm`` warm ones; and
    the CPU limit its REPORTs say was in force."""
    rows, cpu_limit = [], ""
    with _sandbox(opt, bench_functions(), handler, env, memory_mb) as box:
        for i in range(1 + warm):
            sent = time.monotonic()
            result = box.invoke({"i": i})
            got = time.monotonic()
            if result.status != 200 or result.function_error:
                raise RuntimeError(f"{handler} failed: {result.status} {result.body[:500]!r}\n"
                                   + "\n".join(line.text for line in box.logs[-30:]))
            report = box.wait_for_report(result.request_id)
            cpu_limit = report.cpu_limit
            rows.append(_phases(report, (got - sent) * 1000))
    return rows, cpu_limit


def cold_starts(moto_url: str, quick: bool, memory_mb: int) -> Dict[str, Any]:
    rounds, warm = (5, 3) if quick else (11, 4)
    res = _resources(moto_url)
    proxy = ProxyProcess(moto_url, latency_s=0.020)
    empty_opt = Path(tempfile.mkdtemp(prefix="defer-bench-noopt-"))
    runs: Dict[str, List[List[Dict[str, float]]]] = {name: [] for name in COLD_FUNCTIONS}
    limits = set()
    log(f"cold start at {memory_mb} MB: {rounds} fresh environments of each of {', '.join(COLD_FUNCTIONS)} "
        f"(alternated), {warm} warm invokes each")
    try:
        for _ in range(rounds):
            for name, (with_layer, handler) in COLD_FUNCTIONS.items():
                tmp = tempfile.mkdtemp(prefix="defer-bench-")
                env = _cold_env(tmp, {**res, "AWS_ENDPOINT_URL": proxy.endpoint_url})
                rows, cpu_limit = one_environment(LAYER if with_layer else empty_opt, handler, env, warm, memory_mb)
                runs[name].append(rows)
                limits.add(cpu_limit)
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        proxy.stop()
        shutil.rmtree(empty_opt, ignore_errors=True)
    init = {name: [env[0]["init_ms"] for env in envs] for name, envs in runs.items()}
    cold_response = {name: [env[0]["response_ms"] for env in envs] for name, envs in runs.items()}
    warm_billed = {name: [r["billed_ms"] for env in envs for r in env[1:]] for name, envs in runs.items()}
    extra_drain = [env[0]["post_runtime_ms"] - median(r["post_runtime_ms"] for r in env[1:])
                   for env in runs["defer"]]

    def typical(name: str, cold: bool) -> Dict[str, float]:
        rows = [env[0] for env in runs[name]] if cold else [r for env in runs[name] for r in env[1:]]
        return {k: round(median(r[k] for r in rows), 2) for k in rows[0]}

    sfx = _suffix(memory_mb)
    return {
        f"init_extra_ms{sfx}": round(median(init["defer"]) - median(init["plain"]), 1),
        f"first_drain_extra_ms{sfx}": round(median(extra_drain), 1),
        f"cold_response_ratio_to_inline{sfx}": round(median(cold_response["defer"]) / median(cold_response["inline"]), 3),
        f"warm_billed_ratio_to_inline{sfx}": round(median(warm_billed["defer"]) / median(warm_billed["inline"]), 3),
        f"coldstart_detail{sfx}": {
            "memory_mb": memory_mb, "cpu_limit": sorted(limits),
            "environments_per_function": rounds, "warm_invokes_per_environment": warm, "aws_latency_ms": 20,
            "init_ms": {name: summary(v, 2) for name, v in init.items()},
            "cold_response_ms": {name: summary(v, 2) for name, v in cold_response.items()},
            "warm_billed_ms": {name: summary(v, 2) for name, v in warm_billed.items()},
            "first_drain_extra_ms": summary(extra_drain, 2),
            "first_drain_ms": summary([env[0]["post_runtime_ms"] for env in runs["defer"]], 2),
            "typical_invoke": {name: {"cold": typical(name, True), "warm": typical(name, False)} for name in runs},
            "note": "lambda_sandbox --cpu auto, init on the first invoke; plain: cold_plain.handler, no /opt; "
                    "inline: cold_inline.handler (5 boto3 calls, clients at init), no /opt; defer: "
                    "cold_defer.handler (the same 5 items deferred) and dist/layer",
        },
    }


def billed_ratio(moto_url: str, quick: bool, memory_mb: int) -> Dict[str, Any]:
    """The example's warm POST /orders in three environments side by side, invokes alternated."""
    from contextlib import ExitStack

    from examples.api_gateway import demo_aws
    from examples.api_gateway.http_events import post_order, sample_order

    n = 15 if quick else 40
    modes = ("deferred", "inline", "inline_no_extension")
    proxy = ProxyProcess(moto_url, latency_s=0.020)
    rows: Dict[str, List[Dict[str, float]]] = {m: [] for m in modes}
    no_extension = Path(tempfile.mkdtemp(prefix="defer-bench-opt-"))  # the layer's python/ only
    shutil.copytree(LAYER / "python", no_extension / "python")
    tmps: List[str] = []
    log(f"billing at {memory_mb} MB: {n} warm POST /orders of the example per mode ({', '.join(modes)}), "
        f"alternated, AWS calls +20 ms")
    try:
        with ExitStack() as stack:
            boxes = {}
            for mode in modes:
                res = demo_aws.create_resources(moto_url, f"bench-{mode}-{int(time.time() * 1000)}")
                tmps.append(tempfile.mkdtemp(prefix="defer-bench-"))
                env = {**_cold_env(tmps[-1], {**res.function_env(), "AWS_ENDPOINT_URL": proxy.endpoint_url}),
                       "DATABASE_URL": f"sqlite:///{tmps[-1]}/orders.db",
                       "DEFER_MODE": "auto" if mode == "deferred" else "inline",
                       "POWERTOOLS_SERVICE_NAME": "orders", "POWERTOOLS_METRICS_NAMESPACE": "Bench",
                       "POWERTOOLS_LOG_LEVEL": "WARNING"}
                opt = no_extension if mode == "inline_no_extension" else LAYER
                boxes[mode] = stack.enter_context(_sandbox(opt, example_api(), "app.handler", env, memory_mb))
            for i in range(3 + n):
                for mode, box in boxes.items():
                    sent = time.monotonic()
                    result = box.invoke(post_order(sample_order(i)))
                    got = time.monotonic()
                    if result.status != 200 or result.json().get("statusCode") != 201:
                        raise RuntimeError(f"POST /orders ({mode}) failed: {result.body[:500]!r}")
                    report = box.wait_for_report(result.request_id)
                    if i >= 3:
                        rows[mode].append(_phases(report, (got - sent) * 1000))
    finally:
        proxy.stop()
        shutil.rmtree(no_extension, ignore_errors=True)
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)
    billed = {m: median(r["billed_ms"] for r in v) for m, v in rows.items()}
    sfx = _suffix(memory_mb)
    return {
        f"billed_ratio_deferred_to_inline{sfx}": round(billed["deferred"] / billed["inline"], 3),
        f"billed_ratio_deferred_to_inline_no_extension{sfx}": round(billed["deferred"] / billed["inline_no_extension"], 3),
        f"billed_detail{sfx}": {
            "invokes": n, "aws_latency_ms": 20, "memory_mb": memory_mb,
            **{m: {k: summary([r[k] for r in v], 2) for k in ("billed_ms", "response_ms", "runtime_ms",
                                                                "post_runtime_ms")} for m, v in rows.items()},
            "note": "examples/api_gateway app.handler, POST /orders (SQLite write, 3 side effects + a task), "
                    "lambda_sandbox --cpu auto, the three environments' invokes alternated; "
                    "billed = ceil(Duration), which runs until the last extension calls next; inline: "
                    "DEFER_MODE=inline with the layer (its extension still waits for the end of each invoke); "
                    "inline_no_extension: the layer's python/ only, no extension (a function without lambda-defer)",
        },
    }


def effects_and_task(moto_url: str, quick: bool, memory_mb: int) -> Dict[str, Any]:
    """Warm invokes that defer 3 side effects and a task: the drain's post-runtime duration."""
    n = 20 if quick else 40
    res = _resources(moto_url)
    proxy = ProxyProcess(moto_url, latency_s=0.020)
    tmp = tempfile.mkdtemp(prefix="defer-bench-")
    post: List[float] = []
    log(f"drain overlap at {memory_mb} MB: {n} warm invokes deferring 3 side effects and a task, AWS calls +20 ms")
    try:
        env = _cold_env(tmp, {**res, "AWS_ENDPOINT_URL": proxy.endpoint_url})
        with _sandbox(LAYER, bench_functions(), "app.effects_and_task", env, memory_mb) as box:
            for i in range(3 + n):
                result = box.invoke({"i": i})
                if result.status != 200 or result.function_error:
                    raise RuntimeError(f"app.effects_and_task failed: {result.body[:500]!r}")
                report = box.wait_for_report(result.request_id)
                if i >= 3:
                    post.append(report.post_runtime_extensions_ms)
    finally:
        proxy.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    sfx = _suffix(memory_mb)
    return {f"effects_and_task_post_runtime_ms{sfx}": round(median(post), 2),
            f"effects_and_task_detail{sfx}": {"post_runtime_ms": summary(post, 2), "memory_mb": memory_mb,
                                              "aws_latency_ms": 20, "floor_ms": 20}}


def coldstart_png(typical: Dict[str, Dict[str, Dict[str, float]]], memory_mb: int, cpu_limit: str,
                  path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, init, runtime, post = [], [], [], []
    titles = (("plain", "publishes nothing"), ("inline", "5 items inline (boto3)"), ("defer", "5 items deferred"))
    for name, title in titles:
        for phase in ("cold", "warm"):
            row = typical[name][phase]
            labels.append(f"{phase}: {title}")
            init.append(row["init_ms"] if phase == "cold" else 0.0)
            runtime.append(row["runtime_ms"])
            post.append(row["post_runtime_ms"])
    fig, ax = plt.subplots(figsize=(10, 5.2))
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
    ax.set_xlabel(f"ms (medians; lambda_sandbox, {memory_mb} MB, CPU limit {cpu_limit}, init on the first invoke, "
                  "AWS calls +20 ms)")
    ax.set_title("A small Powertools function: cold vs warm invoke, publishing inline vs deferring")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def billing_png(results: Dict[str, Any], path: Path) -> None:
    """The example's warm POST /orders per mode and memory size: runtime and post-runtime, both
    billed (Duration runs until the last extension calls next)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"deferred": "deferred (layer + extension)", "inline": "inline, DEFER_MODE=inline (layer attached)",
              "inline_no_extension": "inline, no extension"}
    labels, runtime, post, billed = [], [], [], []
    for memory_mb in SIZES:
        detail = results.get(f"billed_detail{_suffix(memory_mb)}")
        if not detail:
            continue
        for mode, title in titles.items():
            labels.append(f"{memory_mb} MB: {title}")
            runtime.append(detail[mode]["runtime_ms"]["p50"])
            post.append(detail[mode]["post_runtime_ms"]["p50"])
            billed.append(detail[mode]["billed_ms"]["p50"])
    fig, ax = plt.subplots(figsize=(10, 4.6))
    y = list(range(len(labels)))
    ax.barh(y, runtime, color="#4C72B0", label="runtime: request -> response")
    ax.barh(y, post, left=runtime, color="#DD8452", label="post-runtime: the extension's drain")
    for k in y:
        ax.text(runtime[k] + post[k] + 1, k, f"billed {billed[k]:.0f} ms", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms (medians of warm invokes; lambda_sandbox with memory-proportional CPU, AWS calls +20 ms)")
    ax.set_title("A warm POST /orders of the example, billed (SQLite write, 3 side effects, 2 tasks)", fontsize=10)
    ax.set_xlim(0, max(r + p for r, p in zip(runtime, post)) * 1.25 if runtime else 1)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(moto_url: str, quick: bool = False) -> Dict[str, Any]:
    results: Dict[str, Any] = {}
    for memory_mb in SIZES:
        results.update(cold_starts(moto_url, quick, memory_mb))
        results.update(billed_ratio(moto_url, quick, memory_mb))
        results.update(effects_and_task(moto_url, quick, memory_mb))
    detail = results["coldstart_detail"]
    coldstart_png(detail["typical_invoke"], SIZES[0], "/".join(detail["cpu_limit"]), BENCH / "coldstart.png")
    billing_png(results, BENCH / "billing.png")
    return results
