"""Part "hooks": the first request after a cached secret expired, with and without
``@defer.every`` refreshing it after responses (bench/functions/secret_app.py).

Two sandboxes run side by side, one handler each (Powertools' secret cache, TTL 1 s), their
Secrets Manager calls through the fault proxy at +20 ms; requests go in interleaved pairs
every 0.4 s. In the one without the refresh, every request that found the cache expired
fetched the secret inside the request: those requests' response times, against the
responses of the same positions in the other sandbox, where the hook had refreshed it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any, Dict, List

from .common import AWS_ENV, LAYER, bench_functions, log, median, summary
from .proxy_proc import ProxyProcess

CADENCE_S = 0.4


def run(moto_url: str, quick: bool = False) -> Dict[str, Any]:
    import boto3
    from lambda_sandbox import Sandbox

    n = 15 if quick else 40
    name = f"bench-secret-{int(time.time() * 1000)}"
    boto3.client("secretsmanager", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_secret(Name=name, SecretString="s3cr3t")
    proxy = ProxyProcess(moto_url, latency_s=0.020)
    tmps = [tempfile.mkdtemp(prefix="defer-bench-") for _ in range(2)]
    boxes: Dict[str, Any] = {}
    try:
        for tmp, (mode, refresh) in zip(tmps, (("on_expiry", "0"), ("refreshed", "1"))):
            env = {**AWS_ENV, "DEFER_SOCKET": os.path.join(tmp, "defer.sock"),
                   "DEFER_JOURNAL_DIR": os.path.join(tmp, "journal"), "AWS_ENDPOINT_URL": proxy.endpoint_url,
                   "BENCH_SECRET_NAME": name, "SECRET_TTL_S": "1", "BENCH_REFRESH": refresh}
            boxes[mode] = Sandbox(LAYER, bench_functions(), f"secret_app.{mode}", timeout_s=10, env=env,
                                  echo=False).start()
        log(f"hooks: {n} interleaved request pairs every {CADENCE_S} s, secret TTL 1 s, AWS calls +20 ms")
        rows: List[Dict[str, Dict[str, Any]]] = []
        for i in range(n + 2):
            tick = time.monotonic()
            pair: Dict[str, Dict[str, Any]] = {}
            for mode in (("on_expiry", "refreshed") if i % 2 else ("refreshed", "on_expiry")):
                sent = time.monotonic()
                result = boxes[mode].invoke({})
                took = (time.monotonic() - sent) * 1000
                if result.status != 200 or result.function_error:
                    raise RuntimeError(f"secret_app.{mode} failed: {result.body[:300]!r}")
                boxes[mode].wait_for_report(result.request_id)
                pair[mode] = {"response_ms": took, "fetched": bool(result.json()["fetched"])}
            if i >= 2:  # the first requests of each fetch at a cold cache
                rows.append(pair)
            time.sleep(max(0.0, CADENCE_S - (time.monotonic() - tick)))
    finally:
        for box in boxes.values():
            box.stop()
        proxy.stop()
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)
    expired = [r for r in rows if r["on_expiry"]["fetched"]]
    without = [r["on_expiry"]["response_ms"] for r in expired]
    with_hook = [r["refreshed"]["response_ms"] for r in expired]
    return {
        "first_request_after_expiry_ms_without_hook": round(median(without), 2) if without else None,
        "first_request_after_expiry_ms_with_hook": round(median(with_hook), 2) if with_hook else None,
        "hooks_detail": {
            "pairs": len(rows), "aws_latency_ms": 20, "secret_ttl_s": 1, "cadence_s": CADENCE_S,
            "requests_that_fetched_without_hook": len(expired),
            "requests_that_fetched_with_hook": sum(r["refreshed"]["fetched"] for r in rows),
            "after_expiry_without_hook_ms": summary(without) if without else None,
            "same_requests_with_hook_ms": summary(with_hook) if with_hook else None,
            "all_requests_with_hook_ms": summary([r["refreshed"]["response_ms"] for r in rows]),
        },
    }
