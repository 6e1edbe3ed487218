"""Claim check: drain 100 SQS items of 600 KB each, every one put in S3 before its message.

``handler_lib.engine.drain.Drainer`` in this process with the real sinks and clients
(``ClientFactory``, ``make_sinks`` with ``DEFER_LARGE_PAYLOAD_BUCKET`` set, threshold
262,144 bytes), pointed at the fault proxy (own process, +20 ms a request) in front of
``bench.null_aws``, which takes S3 puts and answers every batch entry OK at once: the wall
time is the engine's. One put of the same 600 KB through the same client and proxy is the
unit:

- ``claimcheck_ratio_to_one_put``: drain wall time / one put's latency. Puts one after
  another would make it >= 100 (plus the sends); puts ``DEFER_CONCURRENCY`` at a time make it
  about ceil(100 / concurrency) plus the batch sends.
- ``claimcheck_ideal_ratio``: ceil(items / concurrency) + ceil(batches / concurrency), in
  puts' latencies (a send costs one latency too).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Dict, List

from .common import AWS_ENV, log, median
from .proxy_proc import ProxyProcess

N_ITEMS = 100
PAYLOAD_BYTES = 600_000
BUCKET = "bench-payloads"


def items(tag: str, n: int) -> List[Any]:
    from handler_lib import _items

    queue = f"http://127.0.0.1/123456789012/bench-claim-{tag}"
    return [_items.sqs_item(tag, queue, f"{tag}-{i}:" + "p" * (PAYLOAD_BYTES - len(f"{tag}-{i}:")), group_id=None,
                            dedup_id=None, delay_seconds=None, attributes=None, offload_above=262_144)
            for i in range(n)]


def measure(upstream_url: str, reps: int, latency_s: float) -> Dict[str, Any]:
    proxy = ProxyProcess(upstream_url)
    saved = {k: os.environ.get(k) for k in [*AWS_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(AWS_ENV)
    os.environ["AWS_ENDPOINT_URL"] = proxy.endpoint_url
    try:
        from handler_lib import config as cfg
        from handler_lib.engine.clients import ClientFactory
        from handler_lib.engine.drain import Drainer
        from handler_lib.engine.pending import PendingQueue
        from handler_lib.engine.sinks import make_sinks
        from handler_lib.engine.tasks import TaskRunner

        config = cfg.load({"DEFER_LARGE_PAYLOAD_BUCKET": BUCKET, "DEFER_LARGE_PAYLOAD_THRESHOLD": "262144"})
        factory = ClientFactory(config)
        queue = PendingQueue(None)
        drainer = Drainer(queue, make_sinks(factory, config), TaskRunner(), config)

        def drain(batch: List[Any]) -> Dict[str, Any]:
            for item in batch:
                queue.add(item)
            started = time.monotonic()
            report = drainer.drain(time.monotonic() + 60)
            return {"wall_s": time.monotonic() - started, **report.as_dict()}

        drain(items("warm", 20))  # clients made, connection pools open
        proxy.set_latency(latency_s)
        s3 = factory("s3")
        body = b"p" * PAYLOAD_BYTES
        puts = []
        for n in range(10):
            started = time.monotonic()
            s3.put_object(Bucket=BUCKET, Key=f"bench/one-{n}", Body=body)
            puts.append(time.monotonic() - started)
        one_put = median(puts)
        runs = []
        for r in range(reps):
            result = drain(items(f"rep{r}", N_ITEMS))
            runs.append(result)
            log(f"claim check drain rep {r}: {result['wall_s'] * 1000:.0f} ms, {result['api_calls']} batch calls, "
                f"delivered {result['delivered']}")
        drainer.shutdown()
        wall = median(r["wall_s"] for r in runs)
        batches = int(median(r["api_calls"] for r in runs))
        ideal = math.ceil(N_ITEMS / config.concurrency) + math.ceil(batches / config.concurrency)
        return {
            "claimcheck_ratio_to_one_put": round(wall / one_put, 2),
            "claimcheck_ideal_ratio": ideal,
            "claimcheck_drain_ms": round(wall * 1000, 1),
            "claimcheck_one_put_ms": round(one_put * 1000, 1),
            "claimcheck_detail": {
                "items": N_ITEMS, "payload_bytes": PAYLOAD_BYTES, "concurrency": config.concurrency,
                "latency_ms": latency_s * 1000, "reps": reps, "batch_calls": batches,
                "wall_ms_per_rep": [round(r["wall_s"] * 1000, 1) for r in runs],
                "delivered_per_rep": [r["delivered"] for r in runs],
                "one_put_ms_each": [round(p * 1000, 1) for p in puts],
                "upstream": "fault proxy (own process, +20 ms a request) -> bench.null_aws",
            },
        }
    finally:
        proxy.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run(quick: bool = False, latency_s: float = 0.020) -> Dict[str, Any]:
    import subprocess

    from .common import PY, ROOT, child_env, stop_process

    null = subprocess.Popen([PY, "-m", "bench.null_aws"], cwd=str(ROOT), env=child_env(),
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        null_url = f"http://127.0.0.1:{null.stdout.readline().strip()}"  # type: ignore[union-attr]
        return measure(null_url, 2 if quick else 5, latency_s)
    finally:
        stop_process(null)
