"""Part lmi: the layer on Lambda Managed Instances (the sandbox's managed-instances mode).

Rounds of 8 concurrent invokes, each deferring 3 SQS messages, against the fault proxy
(+20 ms per AWS call) -> moto. ``lmi_items_per_api_call``: items per SendMessageBatch call
(the batching window fills calls across concurrent requests); the same rounds on-demand
(invokes served one at a time, each drained after its response) give
``lmi_items_per_api_call_on_demand`` for comparison. ``lmi_delivery_lag_p99_ms``: from the
defer call (a timestamp in the message) to SQS accepting it (its SentTimestamp).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

from .common import AWS_ENV, LAYER, bench_functions, log, percentile
from .proxy_proc import ProxyProcess

CONCURRENCY = 8
ITEMS = 3
#: Between bursts. The local fault proxy and moto serve ~20 calls/s on a 2-core machine and
#: queue parallel calls; bursts closer together saturate them and measure the rig, not us.
PAUSE_S = 0.5


def _run_mode(moto_url: str, proxy: ProxyProcess, mode: str, rounds: int) -> Dict[str, Any]:
    from lambda_sandbox import Sandbox
    from tests.support.moto_server import client, drain_messages

    sqs = client("sqs", moto_url)
    queue_url = sqs.create_queue(QueueName=f"bench-lmi-{mode}-{int(time.time() * 1000)}")["QueueUrl"]
    tmp = tempfile.mkdtemp(prefix="defer-bench-lmi-")
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": proxy.endpoint_url, "BENCH_QUEUE_URL": queue_url,
           "DEFER_SOCKET": os.path.join(tmp, "defer.sock"), "DEFER_JOURNAL_DIR": os.path.join(tmp, "journal")}
    kwargs: Dict[str, Any] = {"mode": mode, "max_concurrency": CONCURRENCY} if mode == "managed-instances" else {}
    try:
        with Sandbox(LAYER, bench_functions(), "lmi_app.handler", timeout_s=10, env=env, echo=False,
                     **kwargs) as box, ThreadPoolExecutor(CONCURRENCY) as pool:
            def burst() -> None:
                for result in pool.map(lambda _: box.invoke({"items": ITEMS}), range(CONCURRENCY)):
                    if result.status != 200 or result.function_error:
                        raise RuntimeError(f"lmi bench invoke failed: {result.body[:300]!r}")

            burst()  # warm-up: every worker imports the handler, boto3 connects
            drain_messages(queue_url, CONCURRENCY * ITEMS, timeout=20, sqs=sqs)
            before = len(proxy.recorded())
            for _ in range(rounds):
                burst()
                time.sleep(PAUSE_S)
            expected = rounds * CONCURRENCY * ITEMS
            got = drain_messages(queue_url, expected, timeout=120, sqs=sqs)  # moto receives slowly
            calls = [r for r in proxy.recorded()[before:] if r["action"] == "SendMessageBatch"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lags = [int(m["Attributes"]["SentTimestamp"]) - json.loads(m["Body"])["t"] * 1000 for m in got]
    return {"items": len(got), "expected": expected, "calls": len(calls), "lags_ms": lags,
            "lag_p50_ms": round(percentile(lags, 50), 1), "lag_p99_ms": round(percentile(lags, 99), 1)}


def run(moto_url: str, quick: bool) -> Dict[str, Any]:
    rounds = 5 if quick else 25
    proxy = ProxyProcess(moto_url, latency_s=0.02)
    runs: Dict[str, Dict[str, Any]] = {}
    try:
        for mode in ("managed-instances", "on-demand"):
            log(f"lmi: {rounds} rounds of {CONCURRENCY} concurrent invokes x {ITEMS} items, {mode}, AWS calls +20 ms")
            runs[mode] = _run_mode(moto_url, proxy, mode, rounds)
    finally:
        proxy.stop()
    lmi, on_demand = runs["managed-instances"], runs["on-demand"]
    for mode, r in runs.items():
        if r["items"] != r["expected"]:
            raise RuntimeError(f"lmi bench ({mode}): {r['items']} of {r['expected']} items delivered")
    lags: List[float] = lmi["lags_ms"]
    return {
        "lmi_items_per_api_call": round(lmi["items"] / max(1, lmi["calls"]), 2),
        "lmi_items_per_api_call_on_demand": round(on_demand["items"] / max(1, on_demand["calls"]), 2),
        "lmi_delivery_lag_p50_ms": round(percentile(lags, 50), 1),
        "lmi_delivery_lag_p99_ms": round(percentile(lags, 99), 1),
        "lmi": {mode: {k: v for k, v in r.items() if k != "lags_ms"} for mode, r in runs.items()},
    }
