"""Parts 2, 4 and 6, through the local Lambda sandbox (lambda_sandbox, Python API).

2. API response latency of a handler that defers 5 items vs one that publishes them inline,
   both against the fault proxy (+20 ms per AWS request, like a real AWS call) -> moto.
   Each invoke is sent once the previous one's REPORT is out (a warm, idle environment).
4. Post-runtime extension duration (the sandbox's REPORT) of invokes that defer nothing,
   for a ``@defer`` handler and an unwrapped one, next to a do-nothing extension (the floor:
   what the sandbox itself measures for an extension that only calls next).
6. bench/timeline.png: per invoke of (2), when the response arrived and when each deferred or
   inline AWS call completed (the proxy's record of each call), relative to the request.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

from .common import AWS_ENV, BENCH, LAYER, bench_functions, log, median, percentile, summary
from .proxy_proc import ProxyProcess

def _resources(moto_url: str) -> Dict[str, str]:
    import boto3

    kw = dict(endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
              aws_secret_access_key="testing")
    stamp = str(int(time.time() * 1000))
    queue_url = boto3.client("sqs", **kw).create_queue(QueueName=f"bench-api-{stamp}")["QueueUrl"]
    topic_arn = boto3.client("sns", **kw).create_topic(Name=f"bench-api-{stamp}")["TopicArn"]
    bus = f"bench-api-{stamp}"
    boto3.client("events", **kw).create_event_bus(Name=bus)
    return {"BENCH_QUEUE_URL": queue_url, "BENCH_TOPIC_ARN": topic_arn, "BENCH_BUS": bus}


def _env(tmp: str, extra: Dict[str, str]) -> Dict[str, str]:
    return {**AWS_ENV, "DEFER_SOCKET": os.path.join(tmp, "defer.sock"),
            "DEFER_JOURNAL_DIR": os.path.join(tmp, "journal"), **extra}


def _invokes(opt: Path, handler: str, env: Dict[str, str], n: int, warmup: int = 3,
             between_s: float = 0.0, payload: Callable[[int], Any] = lambda i: {"i": i}) -> List[Dict[str, Any]]:
    from lambda_sandbox import Sandbox

    rows = []
    with Sandbox(opt, bench_functions(), handler, timeout_s=10, env=env, echo=False) as box:
        for i in range(warmup + n):
            sent = time.monotonic()
            result = box.invoke(payload(i))
            got = time.monotonic()
            if result.status != 200 or result.function_error:
                raise RuntimeError(f"{handler} failed: {result.status} {result.body[:500]!r}")
            report = box.wait_for_report(result.request_id)
            if i >= warmup:
                rows.append({"sent": sent, "response": got, "response_ms": (got - sent) * 1000,
                             "post_runtime_ms": report.post_runtime_extensions_ms,
                             "duration_ms": report.duration_ms, "max_memory_mb": report.max_memory_mb,
                             "reported": time.monotonic()})
            if between_s:
                time.sleep(between_s)
    return rows


def _deliveries(rows: List[Dict[str, Any]], recorded: List[Dict[str, Any]]) -> None:
    """Attach to each invoke the completion times (ms after its request) of the AWS calls made
    between its request and the next one's."""
    calls = sorted((r["at"], r["action"]) for r in recorded if r["outcome"] == "forwarded")
    for k, row in enumerate(rows):
        end = rows[k + 1]["sent"] if k + 1 < len(rows) else float("inf")
        row["deliveries"] = [((at - row["sent"]) * 1000, action) for at, action in calls if row["sent"] <= at < end]


def response_latency(moto_url: str, quick: bool) -> Tuple[Dict[str, Any], Dict[str, List[Dict[str, Any]]]]:
    n = 15 if quick else 40
    res = _resources(moto_url)
    proxy = ProxyProcess(moto_url, latency_s=0.020)
    runs: Dict[str, List[Dict[str, Any]]] = {}
    try:
        for mode, handler, extra in (("deferred", "app.deferred", {}),
                                     ("inline", "app.inline", {"BENCH_INLINE_CLIENTS": "1"})):
            tmp = tempfile.mkdtemp(prefix="defer-bench-")
            env = _env(tmp, {**res, **extra, "AWS_ENDPOINT_URL": proxy.endpoint_url})
            log(f"sandbox: {n} invokes of {handler} (+3 warm-up), AWS calls +20 ms")
            before = len(proxy.recorded())
            rows = _invokes(LAYER, handler, env, n)
            _deliveries(rows, proxy.recorded()[before:])
            runs[mode] = rows
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        proxy.stop()
    out: Dict[str, Any] = {}
    for mode, rows in runs.items():
        last = [max(t for t, _ in r["deliveries"]) for r in rows if r["deliveries"]]
        out[mode] = {
            "invokes": len(rows),
            "response_ms": summary([r["response_ms"] for r in rows]),
            "post_runtime_ms": summary([r["post_runtime_ms"] for r in rows]),
            "aws_calls_per_invoke": median(len(r["deliveries"]) for r in rows),
            "last_delivery_ms_after_request_p50": round(median(last), 2) if last else None,
        }
    return {
        "response_p50_ms_deferred": out["deferred"]["response_ms"]["p50"],
        "response_p50_ms_inline": out["inline"]["response_ms"]["p50"],
        "response_p99_ms_deferred": out["deferred"]["response_ms"]["p99"],
        "response_p99_ms_inline": out["inline"]["response_ms"]["p99"],
        "response_detail": {"aws_latency_ms": 20, "items_per_invoke": "2 SQS, 2 SNS, 1 EventBridge", **out},
    }, runs


def idle_overhead(quick: bool) -> Dict[str, Any]:
    n = 30 if quick else 100
    tmp = tempfile.mkdtemp(prefix="defer-bench-")
    env = _env(tmp, {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    log(f"sandbox: {n} idle invokes (@defer handler), {n} unwrapped, {n} with a do-nothing extension")
    wrapped = _invokes(LAYER, "app.idle", env, n)
    # The unwrapped handler with the exec wrapper (the Runtime API proxy says when the response
    # is posted), and without it (the extension waits for Telemetry runtimeDone).
    unwrapped = _invokes(LAYER, "app.unwrapped_idle",
                         {**env, "AWS_LAMBDA_EXEC_WRAPPER": "/opt/defer-runner/exec-wrapper"}, n)
    unwrapped_telemetry = _invokes(LAYER, "app.unwrapped_idle", env, n)
    floor_opt = Path(tmp) / "floor-opt"
    (floor_opt / "extensions").mkdir(parents=True)
    noop = floor_opt / "extensions" / "noop"
    shutil.copy(BENCH / "noop_extension.py", noop)
    noop.chmod(0o755)
    floor = _invokes(floor_opt, "app.plain", env, n)
    shutil.rmtree(tmp, ignore_errors=True)
    post = lambda rows: [r["post_runtime_ms"] for r in rows]  # noqa: E731
    return {
        "idle_invoke_post_runtime_ms": round(median(post(wrapped)), 3),
        "idle_invoke_post_runtime_ms_unwrapped": round(median(post(unwrapped)), 3),
        "idle_invoke_post_runtime_ms_unwrapped_telemetry": round(median(post(unwrapped_telemetry)), 3),
        "idle_invoke_post_runtime_ms_floor": round(median(post(floor)), 3),
        "idle_detail": {
            "wrapped": summary(post(wrapped)), "unwrapped": summary(post(unwrapped)),
            "unwrapped_telemetry": summary(post(unwrapped_telemetry)),
            "noop_extension_floor": summary(post(floor)),
            "wrapped_response_ms": summary([r["response_ms"] for r in wrapped]),
            "note": "from the sandbox's REPORT 'Post Runtime Extensions Duration'; 'unwrapped' runs with "
                    "AWS_LAMBDA_EXEC_WRAPPER=/opt/defer-runner/exec-wrapper (the Runtime API proxy), "
                    "'unwrapped_telemetry' without it, waiting for Telemetry platform.runtimeDone",
        },
    }


def timeline_png(runs: Dict[str, List[Dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 6), sharex=True, sharey=True)
    titles = {"deferred": "defers 5 items (lambda-defer)", "inline": "publishes 5 items inline (boto3)"}
    for ax, mode in zip(axes, ("deferred", "inline")):
        rows = runs[mode]
        for k, row in enumerate(rows):
            ax.barh(k, row["response_ms"], height=0.6, color="#4C72B0", alpha=0.85,
                    label="request -> response" if k == 0 else None)
            times = [t for t, _ in row["deliveries"]]
            ax.plot(times, [k] * len(times), "o", color="#DD8452", markersize=4,
                    label="AWS call completed (item delivered)" if k == 0 else None)
        ax.set_title(f"{titles[mode]}\nresponse p50 {percentile([r['response_ms'] for r in rows], 50):.1f} ms")
        ax.set_xlabel("ms since the request was sent")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel("invoke #")
    fig.suptitle("lambda-defer: API response vs delivery of side effects (local sandbox, AWS calls +20 ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(moto_url: str, quick: bool = False) -> Dict[str, Any]:
    results, runs = response_latency(moto_url, quick)
    results.update(idle_overhead(quick))
    timeline_png(runs, BENCH / "timeline.png")
    return results
