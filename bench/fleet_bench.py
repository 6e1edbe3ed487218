"""Part fleet: many environments publishing at once against an account's quota (issue 22).

N environments, each a real defer-runner (the layer's launcher against its own stub Extensions
API, bench/ext_stub.py: its own socket, journal and /tmp), all publishing EventBridge events
through one fault proxy (own process) that holds PutEvents to a quota of entries a second for
everyone together, in front of moto server. This process plays each environment's function:
every ``PERIOD_S`` an INVOKE, ``ITEMS`` events sent over the socket as ``@defer`` sends them,
the end marker; the extension drains until done or until the deadline less its margin, and
carries over the rest. After the feeding window the environments go on being invoked with
nothing (a fleet's next requests) until every item is in moto or the bound is hit.

Everything reported is read back from moto and the proxy, never from the extensions' own
counters: delivered items (the rule's SQS target: unique ``defer_id``), their delivery time
(SQS ``SentTimestamp``, when moto took the event), dead letters (the DLQ), throttled requests
and entries sent (the proxy's quota counts; entries sent beyond the items are retries).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

from .common import AWS_ENV, log, percentile
from .ext_stub import RealExtension
from .proxy_proc import ProxyProcess

ENVIRONMENTS = 50
# moto server delivers ~100 events/s through a rule to SQS on this 2-core machine, fewer as the
# queue grows: the quota is set well below that, so that the quota, not moto, is what binds.
QUOTA_ENTRIES_S = 50  # PutEvents entries a second, for the whole fleet (the account's quota)
ITEMS = 2  # events per invoke
PERIOD_S = 1.0  # an invoke every second per environment: 100 events/s offered by 50, twice the quota
INVOKE_TIMEOUT_S = 3.0  # the function's timeout: drains stop 300 ms (the margin) before it
WINDOW_S = 20.0
TAIL_BOUND_S = 90.0  # after the window: the most time given to deliver what is carried over


class Environment:
    """One execution environment: the real extension, and the function's side of its socket."""

    def __init__(self, index: int, env: Dict[str, str]) -> None:
        self.index = index
        self.ext = RealExtension(env)
        self.sent: List[str] = []
        self.durations_ms: List[float] = []  # INVOKE to the extension's next: what the invoke is billed
        self.error = ""

    def start(self) -> "Environment":
        self.ext.start(ready_timeout=120)
        from handler_lib._channel import SocketChannel

        self.channel = SocketChannel(self.ext.socket_path, wrapped=True, posts=True)
        return self

    def invoke(self, bus: str, source: str, items: int) -> None:
        """One invoke: INVOKE, the items and the end marker over the socket, then wait (bounded)
        for the extension's next, which ends the invoke."""
        from handler_lib import _items, wire

        rid = str(uuid.uuid4())
        before = len(self.ext.stub.next_at)
        started = time.monotonic()
        self.ext.stub.push_invoke(rid, timeout_s=INVOKE_TIMEOUT_S)
        for n in range(items):
            item = _items.event_item(rid, "FleetEvent", {"env": self.index, "n": len(self.sent),
                                                         "t_us": time.time_ns() // 1000},
                                     source=source, bus=bus, resources=None)
            self.channel.send(wire.encode(item))
            self.sent.append(item.id)
        self.channel.end_invoke(wire.EndOfInvoke(rid, items), timeout_s=0.5)
        if not self.ext.stub.wait_next_calls(before + 1, INVOKE_TIMEOUT_S + 10):
            raise RuntimeError(f"environment {self.index}: no next after invoke {rid}: {self.ext.log()}")
        self.durations_ms.append((self.ext.stub.next_at[before] - started) * 1000)

    def stop(self) -> None:
        try:
            self.channel.close()
        except Exception:  # noqa: BLE001 - stopping anyway
            pass
        self.ext.stop()


def _loop(env: Environment, bus: str, source: str, feed_until: float, stop: threading.Event) -> None:
    """Invoke every PERIOD_S: ITEMS events until ``feed_until``, then nothing until ``stop``."""
    next_at = time.monotonic() + (env.index % 10) * PERIOD_S / 10  # spread the fleet's invokes
    try:
        while not stop.is_set():
            if stop.wait(max(0.0, next_at - time.monotonic())):
                break
            next_at += PERIOD_S
            env.invoke(bus, source, ITEMS if time.monotonic() < feed_until else 0)
            next_at = max(next_at, time.monotonic())
    except Exception as exc:  # noqa: BLE001 - reported, and the run fails its check
        env.error = f"{type(exc).__name__}: {exc}"
        log(f"fleet: environment {env.index} failed: {env.error}")


def _queue_count(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _read_back(sqs: Any, url: str, expected: int) -> List[Tuple[str, int, int]]:
    """Every message of the rule's target queue: (defer_id, enqueued µs, SentTimestamp ms)."""
    out: List[Tuple[str, int, int]] = []
    empty = 0
    while empty < 3 and len(out) < expected * 2:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                  AttributeNames=["SentTimestamp"]).get("Messages", [])
        empty = 0 if got else empty + 1
        for message in got:
            detail = json.loads(message["Body"])["detail"]
            out.append((detail["defer_id"], int(detail["t_us"]), int(message["Attributes"]["SentTimestamp"])))
    return out


def measure(moto_url: str, environments: int, window_s: float) -> Dict[str, Any]:
    from tests.support.moto_server import client, create_resources

    res = create_resources(moto_url, f"fleet{uuid.uuid4().hex[:8]}")
    sqs = client("sqs", moto_url)
    proxy = ProxyProcess(moto_url)
    proxy.set_quota("PutEvents", QUOTA_ENTRIES_S, unit="entries")
    env_vars = {"AWS_ENDPOINT_URL": proxy.endpoint_url, "DEFER_DLQ_URL": res.dlq_url}
    fleet = [Environment(i, env_vars) for i in range(environments)]
    stop = threading.Event()
    threads: List[threading.Thread] = []
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(Environment.start, fleet))
        log(f"fleet: {environments} extensions ready in {time.monotonic() - started:.1f} s")
        begin = time.monotonic()
        begin_ms = time.time() * 1000
        feed_until = begin + window_s
        threads = [threading.Thread(target=_loop, args=(env, res.bus_name, res.event_source, feed_until, stop),
                                    daemon=True) for env in fleet]
        for thread in threads:
            thread.start()
        stop.wait(window_s)
        fed_s = time.monotonic() - begin
        sent = sum(len(env.sent) for env in fleet)
        # the tail: environments keep being invoked (with nothing) until moto holds every item
        deadline = time.monotonic() + TAIL_BOUND_S
        while time.monotonic() < deadline and not stop.is_set():
            sent = sum(len(env.sent) for env in fleet)
            if _queue_count(sqs, res.event_queue_url) >= sent or any(env.error for env in fleet):
                break
            stop.wait(1.0)
        tail_s = time.monotonic() - begin - fed_s
        stop.set()
        for thread in threads:
            thread.join(INVOKE_TIMEOUT_S + 15)
        sent = sum(len(env.sent) for env in fleet)
        counts = proxy.counts()
    finally:
        stop.set()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(Environment.stop, fleet))
        proxy.stop()
    rows = _read_back(sqs, res.event_queue_url, sent)
    letters = _queue_count(sqs, res.dlq_url)
    first: Dict[str, Tuple[int, int]] = {}
    for defer_id, t_us, sent_ms in rows:
        if defer_id not in first or sent_ms < first[defer_id][1]:
            first[defer_id] = (t_us, sent_ms)
    ids = {i for env in fleet for i in env.sent}
    durations = [d for env in fleet for d in env.durations_ms]
    delivered = [first[i] for i in ids if i in first]
    lags = [sent_ms - t_us / 1000 for t_us, sent_ms in delivered]
    times = sorted(sent_ms for _, sent_ms in delivered)
    span_s = (times[-1] - times[0]) / 1000 if len(times) > 1 else float("nan")
    in_window = sum(1 for t in times if t <= begin_ms + window_s * 1000)
    quota = counts["quotas"].get("PutEvents", {})
    entries_sent = quota.get("admitted_entries", 0) + quota.get("throttled_entries", 0)
    return {
        "environments": environments, "quota_putevents_entries_s": QUOTA_ENTRIES_S,
        "items_per_invoke": ITEMS, "invoke_period_s": PERIOD_S, "invoke_timeout_s": INVOKE_TIMEOUT_S,
        "offered_items_s": round(environments * ITEMS / PERIOD_S, 1),
        "window_s": round(fed_s, 1), "tail_s": round(tail_s, 1),
        "items_sent": sent, "items_delivered": len(delivered), "duplicates": len(rows) - len(first),
        "items_lost": sent - len(delivered) - letters, "dead_lettered": letters,
        "delivered_items_s": round(len(delivered) / span_s, 1) if span_s == span_s and span_s > 0 else 0.0,
        "delivered_items_s_in_window": round(in_window / window_s, 1),
        "putevents_requests": counts["requests"].get("PutEvents", 0),
        "throttled_requests": quota.get("throttled", 0), "throttled_entries": quota.get("throttled_entries", 0),
        "admitted_entries": quota.get("admitted_entries", 0),
        "retried_entries": entries_sent - len(ids),
        "delivery_lag_ms": {"p50": round(percentile(lags, 50), 1), "p99": round(percentile(lags, 99), 1),
                            "max": round(max(lags), 1)} if lags else {},
        "invokes": len(durations),
        "invoke_ms": {"p50": round(percentile(durations, 50), 1), "p99": round(percentile(durations, 99), 1)}
        if durations else {},
        "invokes_held_to_the_deadline": sum(1 for d in durations if d > (INVOKE_TIMEOUT_S - 0.5) * 1000),
        "environment_errors": [env.error for env in fleet if env.error],
    }


def run(moto_url: str, quick: bool = False, environments: Optional[int] = None) -> Dict[str, Any]:
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    try:
        n = environments or ENVIRONMENTS
        window = WINDOW_S / 2 if quick else WINDOW_S
        out = measure(moto_url, n, window)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    log(f"fleet: {out['items_delivered']}/{out['items_sent']} delivered, {out['dead_lettered']} dead-lettered, "
        f"{out['throttled_requests']} requests throttled, {out['delivered_items_s']} items/s")
    return {
        "fleet_dead_lettered": out["dead_lettered"],
        "fleet_items_lost": out["items_lost"],
        "fleet_delivered_items_per_s": out["delivered_items_s"],
        "fleet_quota_use": round(out["delivered_items_s"] / QUOTA_ENTRIES_S, 3),
        "fleet_throttled_requests": out["throttled_requests"],
        "fleet_retried_entries": out["retried_entries"],
        "fleet_delivery_lag_p50_ms": out["delivery_lag_ms"].get("p50", 0.0),
        "fleet_delivery_lag_p99_ms": out["delivery_lag_ms"].get("p99", 0.0),
        "fleet_detail": {
            "mode": f"{n} real defer-runner extensions (each its own process, stub Extensions API, socket, journal "
                    f"and /tmp), this process as their functions; EventBridge PutEvents through one fault proxy "
                    f"(own process) holding the fleet to {QUOTA_ENTRIES_S} entries/s (a token bucket, burst 1 s), "
                    f"in front of moto server. Figures read back from moto (the rule's SQS target: unique defer_id, "
                    f"SentTimestamp; the DLQ) and from the proxy's quota counts, never from the extensions.",
            **out,
        },
    }
