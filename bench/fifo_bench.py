"""Part 9: what FIFO order costs in the drain: 100 items of one message group, and 100 items
over 10 groups, to one FIFO queue through the fault proxy (+20 ms per request) in front of
moto server.

A FIFO group puts one item in a call (SQS and SNS report a batch's entries one by one: a
failed entry would be overtaken by a later one of its group that landed), and groups share
batches. So one busy group costs a call per item, in sequence, while many groups cost about
what standard queues do. ``Drainer`` driven in this process with the real sinks and clients.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List

from .common import AWS_ENV, log, median
from .proxy_proc import ProxyProcess

N_ITEMS = 100


def _items(queue_url: str, groups: int, tag: str) -> List[Any]:
    from handler_lib import _items

    return [_items.sqs_item(tag, queue_url, {"n": i}, group_id=f"g{i % groups}", dedup_id=None,
                            delay_seconds=None, attributes=None) for i in range(N_ITEMS)]


def run(moto_url: str, quick: bool = False, latency_s: float = 0.020) -> Dict[str, Any]:
    import boto3

    reps = 2 if quick else 3
    proxy = ProxyProcess(moto_url)
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

        sqs = boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        config = cfg.load({})
        queue = PendingQueue(None)
        drainer = Drainer(queue, make_sinks(ClientFactory(config)), TaskRunner(), config)

        def drain(groups: int, tag: str) -> Dict[str, Any]:
            url = sqs.create_queue(QueueName=f"bench-fifo-{tag}-{int(time.time() * 1000)}.fifo",
                                   Attributes={"FifoQueue": "true"})["QueueUrl"]
            for item in _items(url, groups, tag):
                queue.add(item)
            started = time.monotonic()
            report = drainer.drain(time.monotonic() + 60)
            return {"wall_ms": (time.monotonic() - started) * 1000, "calls": report.api_calls,
                    "delivered": report.delivered}

        drain(10, "warm")  # clients made, connections open
        proxy.set_latency(latency_s)
        out: Dict[str, Any] = {}
        for groups in (1, 10):
            runs = [drain(groups, f"g{groups}r{r}") for r in range(reps)]
            for r in runs:
                log(f"fifo {groups} group(s): {r['wall_ms']:.0f} ms, {r['calls']} calls, delivered {r['delivered']}")
            out[f"fifo_{groups}_groups"] = {"wall_ms_median": round(median(r["wall_ms"] for r in runs), 1),
                                            "api_calls": runs[0]["calls"],
                                            "delivered_per_rep": [r["delivered"] for r in runs]}
        return {"fifo_one_group_ms_per_100": out["fifo_1_groups"]["wall_ms_median"],
                "fifo_ten_groups_ms_per_100": out["fifo_10_groups"]["wall_ms_median"],
                "fifo_detail": {"items": N_ITEMS, "latency_ms": latency_s * 1000,
                                "concurrency": config.concurrency, "reps": reps, **out}}
    finally:
        engine = locals().get("drainer")
        if engine is not None:
            engine.shutdown()
        proxy.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
