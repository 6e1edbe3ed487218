"""Part 3: drain 1,000 mixed items (SQS, SNS, EventBridge) through the fault proxy (+20 ms/request).

Drives ``handler_lib.engine.drain.Drainer`` in this process with the real sinks and the real clients
made by the extension's own ``ClientFactory``, pointed (``AWS_ENDPOINT_URL``) at the fault
proxy, which runs in its own process in front of moto server. Items are built by
handler_lib's own item builders (the wire objects the extension receives). No journal.

- ``drain_api_calls_per_1000``: API calls the Drainer made (its report), checked against the
  requests the proxy saw.
- ``drain_ratio_to_ideal``: wall time / (ceil(calls / concurrency) x latency).
- ``drain_speedup_vs_sequential``: one boto3 call per item, one at a time (send_message,
  publish, put_events with one entry) through the same proxy, timed on a 150-item slice of
  the same mix and scaled to 1,000 (it is linear: every call waits the full latency).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Dict, List

from .common import AWS_ENV, log, median
from .proxy_proc import ProxyProcess

N_ITEMS = 1_000
SEQUENTIAL_SLICE = 150


SQS_QUEUES = 34  # ~10 SQS items per queue: one batch each (see null_aws for moto's O(queue length))


def make_resources(moto_url: str) -> Dict[str, Any]:
    """Fresh plain targets (no subscriptions or rules), so moto does only the call itself."""
    import boto3

    kw = dict(endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
              aws_secret_access_key="testing")
    sqs, sns, events = (boto3.client(s, **kw) for s in ("sqs", "sns", "events"))
    stamp = str(int(time.time() * 1000))
    queue_urls = [sqs.create_queue(QueueName=f"bench-drain-{stamp}-{n}")["QueueUrl"] for n in range(SQS_QUEUES)]
    topic_arn = sns.create_topic(Name=f"bench-drain-{stamp}")["TopicArn"]
    bus = f"bench-drain-{stamp}"
    events.create_event_bus(Name=bus)
    return {"queue_urls": queue_urls, "topic_arn": topic_arn, "bus": bus}


def mixed_items(res: Dict[str, Any], n: int, tag: str) -> List[Any]:
    from handler_lib import _items

    note = "x" * 960
    out: List[Any] = []
    for i in range(n):
        body = {"order_id": f"{tag}-{i}", "note": note}
        kind = i % 3
        if kind == 0:
            out.append(_items.sqs_item(tag, res["queue_urls"][(i // 3) % SQS_QUEUES], body, group_id=None, dedup_id=None,
                                       delay_seconds=None, attributes=None))
        elif kind == 1:
            out.append(_items.sns_item(tag, res["topic_arn"], body, subject=None, group_id=None,
                                       dedup_id=None, attributes=None))
        else:
            out.append(_items.event_item(tag, "OrderCreated", body, source="bench.orders", bus=res["bus"],
                                         resources=None))
    return out


def fake_resources(stamp: str) -> Dict[str, Any]:
    return {"queue_urls": [f"http://127.0.0.1/123456789012/null-{stamp}-{n}" for n in range(SQS_QUEUES)],
            "topic_arn": f"arn:aws:sns:us-east-1:123456789012:null-{stamp}", "bus": f"null-{stamp}"}


def measure(upstream_url: str, moto_url: str, reps: int, latency_s: float, sequential: bool,
            floor: bool) -> Dict[str, Any]:
    """Drain N_ITEMS ``reps`` times through a fault proxy in front of ``upstream_url``."""
    real = moto_url is not None
    proxy = ProxyProcess(upstream_url)
    saved = {k: os.environ.get(k) for k in [*AWS_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(AWS_ENV)
    os.environ["AWS_ENDPOINT_URL"] = proxy.endpoint_url
    try:
        from handler_lib.engine.drain import Drainer
        from handler_lib.engine.clients import ClientFactory
        from handler_lib.engine.pending import PendingQueue
        from handler_lib.engine.sinks import make_sinks
        from handler_lib.engine.tasks import TaskRunner
        from handler_lib import config as cfg

        config = cfg.load({})
        resources = (lambda tag: make_resources(moto_url)) if real else fake_resources
        queue = PendingQueue(None)
        sinks = make_sinks(ClientFactory(config))
        drainer = Drainer(queue, sinks, TaskRunner(), config)

        def drain(items: List[Any]) -> Dict[str, Any]:
            for item in items:
                queue.add(item)
            started = time.monotonic()
            report = drainer.drain(time.monotonic() + 60)
            wall = time.monotonic() - started
            return {"wall_s": wall, **report.as_dict()}

        drain(mixed_items(resources("warm"), 60, "warm"))  # clients made, connection pools open
        proxy.set_latency(latency_s)
        drain(mixed_items(resources("warm2"), 60, "warm2"))
        runs = []
        for r in range(reps):
            items = mixed_items(resources(f"rep{r}"), N_ITEMS, f"rep{r}")
            seen = len(proxy.recorded())  # (proxy.reset() would also drop the latency rule)
            result = drain(items)
            result["proxy_requests"] = len(proxy.recorded()) - seen
            runs.append(result)
            log(f"drain ({'moto' if real else 'null upstream'}) rep {r}: {result['wall_s'] * 1000:.0f} ms, "
                f"{result['api_calls']} calls, delivered {result['delivered']}")
        calls = int(median(r["api_calls"] for r in runs))
        wall = median(r["wall_s"] for r in runs)
        ideal = math.ceil(calls / config.concurrency) * latency_s
        out: Dict[str, Any] = {
            "upstream": "moto server" if real else "bench.null_aws (answers every entry OK at once)",
            "api_calls": calls, "ratio_to_ideal": round(wall / ideal, 3),
            "latency_ms": latency_s * 1000, "concurrency": config.concurrency, "reps": reps,
            "wall_ms_median": round(wall * 1000, 1),
            "wall_ms_per_rep": [round(r["wall_s"] * 1000, 1) for r in runs],
            "ideal_ms": round(ideal * 1000, 1),
            "proxy_requests_per_rep": [r["proxy_requests"] for r in runs],
            "delivered_per_rep": [r["delivered"] for r in runs],
            "retried_per_rep": [r["retried"] for r in runs],
        }
        if sequential:
            # The naive alternative: one call per item, one after another, same proxy, with the
            # botocore clients a handler would publish through (the lean ones have no Publish).
            seq_items = mixed_items(resources("seq"), SEQUENTIAL_SLICE, "seq")
            boto = ClientFactory(config._replace(transport="botocore"))
            clients = {"sqs": boto("sqs"), "sns": boto("sns"), "event": boto("events")}
            started = time.monotonic()
            for item in seq_items:
                if item.kind == "sqs":
                    clients["sqs"].send_message(QueueUrl=item.queue_url, MessageBody=item.body)
                elif item.kind == "sns":
                    clients["sns"].publish(TopicArn=item.topic_arn, Message=item.message)
                else:
                    clients["event"].put_events(Entries=[{"Source": item.source, "DetailType": item.detail_type,
                                                          "Detail": item.detail, "EventBusName": item.target}])
            seq_wall = (time.monotonic() - started) * N_ITEMS / SEQUENTIAL_SLICE
            out["speedup_vs_sequential"] = round(seq_wall / wall, 2)
            out["sequential_ms_per_item"] = round(seq_wall / N_ITEMS * 1000, 2)
            out["sequential_ms_1000_extrapolated"] = round(seq_wall * 1000, 1)
        if floor:
            # What the set-up costs without injected latency (its own throughput limit).
            proxy.set_latency(0)
            floor_runs = [drain(mixed_items(resources(f"floor{r}"), N_ITEMS, f"floor{r}"))["wall_s"]
                          for r in range(2)]
            out["no_latency_wall_ms_median"] = round(median(floor_runs) * 1000, 1)
        drainer.shutdown()
        return out
    finally:
        proxy.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run(moto_url: str, quick: bool = False, latency_s: float = 0.020) -> Dict[str, Any]:
    import subprocess

    from .common import PY, ROOT, child_env, stop_process

    reps = 3 if quick else 5
    null = subprocess.Popen([PY, "-m", "bench.null_aws"], cwd=str(ROOT), env=child_env(),
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        null_url = f"http://127.0.0.1:{null.stdout.readline().strip()}"  # type: ignore[union-attr]
        engine = measure(null_url, None, reps, latency_s, sequential=True, floor=True)
    finally:
        stop_process(null)
    with_moto = measure(moto_url, moto_url, reps, latency_s, sequential=True, floor=True)
    return {
        "drain_api_calls_per_1000": with_moto["api_calls"],
        "drain_ratio_to_ideal": engine["ratio_to_ideal"],
        "drain_speedup_vs_sequential": engine["speedup_vs_sequential"],
        "drain_ratio_to_ideal_moto": with_moto["ratio_to_ideal"],
        "drain_speedup_vs_sequential_moto": with_moto["speedup_vs_sequential"],
        "drain_detail": {
            "mode": "handler_lib.engine.drain.Drainer driven in the bench process with the real sinks and real boto3 "
                    "clients (extension.main.ClientFactory), AWS_ENDPOINT_URL = fault proxy (own process, "
                    "+20 ms per request). Headline ratio/speedup: proxy -> bench.null_aws (measures the engine); "
                    "*_moto: proxy -> moto server (real delivery, but moto's own per-call CPU is in the wall time).",
            "items": N_ITEMS,
            "mix": f"1/3 each: SQS over {SQS_QUEUES} queues, SNS (1 topic), EventBridge (1 bus); ~1 KB bodies",
            "null_upstream": engine, "moto": with_moto,
        },
    }
