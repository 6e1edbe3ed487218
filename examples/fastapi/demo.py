"""`make demo` (second part): the FastAPI orders API in the local Lambda sandbox, served by ``defer.asgi``.

Starts moto server and a stand-in for the slow shipping API (200 ms per quote), runs
``app.handler`` with the built layer (``dist/layer``), posts a few orders, and prints per
request the response time next to when its BackgroundTask finished (the quote answered) and
when the SQS message it deferred landed. Exit status 0 only if every task ran and every
message landed. Run: ``.venv/bin/python -m examples.fastapi.demo``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from ..api_gateway import demo_aws, demo_package
from ..api_gateway.http_events import post_order, sample_order
from .shipping_api import ShippingApi

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIR = Path(__file__).resolve().parent
TASK_DIR = REPO_ROOT / "dist" / "demo" / "fastapi"  # SOURCE_DIR and its requirements, as deployed (main builds it)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.fastapi.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args(argv)
    if not (REPO_ROOT / "dist" / "layer" / "extensions" / "defer-runner").exists():
        print("dist/layer is not built: run `make layer` (or `make demo`)", file=sys.stderr)
        return 2
    from lambda_sandbox import Sandbox

    demo_package.task_root(SOURCE_DIR, SOURCE_DIR / "requirements.txt", TASK_DIR)
    work = Path(tempfile.mkdtemp(prefix="defer-demo-fastapi-"))
    moto, api = demo_aws.Moto(), ShippingApi(delay_s=0.2)
    box: Any = None
    print(f"\nlambda-defer demo: FastAPI + defer.asgi, {args.requests} x POST /orders, "
          f"each with a BackgroundTask that calls a {api.delay_s * 1000:.0f} ms shipping API")
    try:
        moto.start()
        api.start()
        sqs = demo_aws.client("sqs", moto.endpoint_url)
        queue_url = sqs.create_queue(QueueName=f"shipping-{work.name[-8:]}")["QueueUrl"]
        env = {**demo_aws.AWS_ENV, "AWS_ENDPOINT_URL": moto.endpoint_url, "SHIPPING_API_URL": api.url,
               "SHIPPING_QUEUE_URL": queue_url, "ORDERS_DB": str(work / "orders.db"),
               "DEFER_SOCKET": str(work / "defer.sock"), "DEFER_JOURNAL_DIR": str(work / "journal"),
               "DEFER_RUNNER_PYTHON": sys.executable}
        box = Sandbox(REPO_ROOT / "dist" / "layer", TASK_DIR, "app.handler", timeout_s=10, memory_mb=512,
                      env=env, echo=False).start()
        rows = []
        for n in range(args.requests + 1):  # the first is the cold start, not in the table
            sent = time.time()
            result = box.invoke(post_order(sample_order(n)))
            answered = time.time()
            order = json.loads(result.json()["body"])
            report = box.wait_for_report(result.request_id, timeout=15)
            if n:
                rows.append((n, sent, answered, order["id"], report.post_runtime_extensions_ms))
        landed: dict[str, float] = {}
        deadline = time.monotonic() + 10
        while len(landed) < len(rows) and time.monotonic() < deadline:
            for msg in demo_aws.receive_all(sqs, queue_url):
                landed[json.loads(msg["Body"])["order_id"]] = int(msg["Attributes"]["SentTimestamp"]) / 1000
            time.sleep(0.05)
        quoted = {q["order_id"]: q["answered"] for q in api.quotes}
    finally:
        if box is not None:
            box.stop()
        api.stop()
        moto.stop()

    def after(at: Optional[float], sent: float) -> str:
        return "   —   " if at is None else f"{(at - sent) * 1000:7.1f}"

    print("  req  response | task done  SQS landed | REPORT post-runtime")
    for n, sent, answered, oid, post_ms in rows:
        print(f"  #{n:<3} {(answered - sent) * 1000:7.1f}  |  {after(quoted.get(oid), sent)}  "
              f"{after(landed.get(oid), sent)}  | {post_ms:7.1f}")
    print("  (ms after the request was sent; the BackgroundTask runs after the response, in the same invoke)")
    missing = [f"#{n}" for n, _, _, oid, _ in rows if oid not in quoted or oid not in landed]
    if missing:
        print("FAILED, background work not done or its message not landed: " + ", ".join(missing))
        return 1
    print("every BackgroundTask ran after its response and its message landed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
