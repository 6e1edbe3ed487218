"""One handler-side enqueue measurement in a fresh interpreter (like a Lambda function process).

``python -m bench.enqueue_worker MODE N REPS`` prints one JSON object: per-repetition lists
of per-call latencies in ns, and per-repetition wall times. Modes:

- ``ours``   ``defer.sqs(QUEUE_URL, payload)`` inside a ``@defer`` handler, to the real
  defer-runner listening on ``$DEFER_SOCKET`` (``DEFER_MODE=extension``: never inline).
- ``http``   the peer design: ``POST /item`` of the same item as JSON to ``$BENCH_HTTP_PORT``
  with one keep-alive ``http.client`` connection, reading each 202.
- ``queue``  an in-process ``queue.Queue.put`` of (queue_url, payload), a consumer thread
  taking them off.
- ``ack``    the end of a ``@defer`` invoke that deferred 5 items: the end marker and the wait
  for the extension's confirmation that it holds them (one sample per invoke).
- ``boto3``  publishing inline: ``sqs.send_message`` to ``$AWS_ENDPOINT_URL`` (moto server).
- ``kinds``  ``defer.sqs``, ``defer.invoke``, ``defer.sfn`` and ``defer.callback`` of the same
  payload, interleaved call by call in one ``@defer`` handler (so a slower moment of the
  machine costs each kind alike): samples per kind.
- ``otel``   ``defer.sqs`` with an OpenTelemetry span current (opentelemetry-sdk, as a traced
  handler has it: the item carries its traceparent) and without one, interleaved call by call
  in one ``@defer`` handler; ``otel_new_span`` is the same call under a span of its own each
  time (the worst case: nothing of the last call's context can be reused).

Every mode gets the same ~1 KB dict payloads (distinct dicts, built before timing).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from typing import Any, Callable, Dict, List

QUEUE_URL = os.environ.get("BENCH_QUEUE_URL", "http://127.0.0.1:1/123456789012/bench-q")
WARMUP = 300
BLOCK = int(os.environ.get("BENCH_OTEL_BLOCK", "20"))


def payloads(n: int) -> List[Dict[str, Any]]:
    filler = "x" * 960
    return [{"order_id": f"o-{i:08d}", "amount": i % 997, "note": filler} for i in range(n)]


def timed(call: Callable[[Any], Any], items: List[Any]) -> List[int]:
    clock = time.perf_counter_ns
    out = [0] * len(items)
    for i, item in enumerate(items):
        t0 = clock()
        call(item)
        out[i] = clock() - t0
    return out


class Ctx:
    def __init__(self, rid: str) -> None:
        self.aws_request_id = rid


def run_kinds(n: int, reps: int) -> Dict[str, Any]:
    """Each kind's enqueue, interleaved item by item; the reported ratio is per repetition."""
    from handler_lib import defer

    calls = {"sqs": lambda p: defer.sqs(QUEUE_URL, p),
             "invoke": lambda p: defer.invoke("bench-function", p),
             "sfn": lambda p: defer.sfn("arn:aws:states:us-east-1:123456789012:stateMachine:bench", p),
             "callback": lambda p: defer.callback("YmVuY2gtY2FsbGJhY2s=", result=p)}
    per_kind: Dict[str, List[List[int]]] = {kind: [] for kind in calls}

    @defer
    def handler(event: Any, context: Any) -> None:
        clock = time.perf_counter_ns
        out: Dict[str, List[int]] = {kind: [] for kind in calls}
        for p in event:
            for kind, call in calls.items():
                t0 = clock()
                call(p)
                out[kind].append(clock() - t0)
        context.samples = out

    warm = Ctx("warmup")
    handler(payloads(WARMUP // 4), warm)
    walls = []
    gc.collect()
    for r in range(reps):
        ctx = Ctx(f"rep-{r}")
        t0 = time.perf_counter()
        handler(payloads(n), ctx)
        walls.append(time.perf_counter() - t0)
        for kind, samples in ctx.samples.items():  # type: ignore[attr-defined]
            per_kind[kind].append(samples)
    return {"mode": "kinds", "n": n, "reps": reps, "samples_ns": per_kind, "wall_s": walls}


def run_otel(n: int, reps: int) -> Dict[str, Any]:
    """defer.sqs with and without a current OpenTelemetry span, interleaved in blocks of BLOCK
    calls (a handler's calls follow one another in one context; a busy moment of the machine
    still costs each kind alike)."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from handler_lib import defer

    tracer = TracerProvider().get_tracer("bench")
    no_span = otel_context.Context()
    kinds = ("otel", "otel_new_span", "plain")
    per_kind: Dict[str, List[List[int]]] = {kind: [] for kind in kinds}

    @defer
    def handler(event: Any, context: Any) -> None:
        clock = time.perf_counter_ns
        out: Dict[str, List[int]] = {kind: [] for kind in kinds}
        spans = [tracer.start_span(f"call-{i}") for i in range(len(event))]  # made before timing
        own = [trace.set_span_in_context(span) for span in spans]
        with tracer.start_as_current_span("handler"):
            handler_span = otel_context.get_current()
            for start in range(0, len(event), BLOCK):
                for kind in kinds:
                    for i in range(start, min(start + BLOCK, len(event))):
                        ctx = handler_span if kind == "otel" else own[i] if kind == "otel_new_span" else no_span
                        token = otel_context.attach(ctx)
                        t0 = clock()
                        defer.sqs(QUEUE_URL, event[i])
                        out[kind].append(clock() - t0)
                        otel_context.detach(token)
        for span in spans:
            span.end()
        context.samples = out

    handler(payloads(WARMUP // 3), Ctx("warmup"))
    walls = []
    gc.collect()
    for r in range(reps):
        ctx = Ctx(f"rep-{r}")
        t0 = time.perf_counter()
        handler(payloads(n), ctx)
        walls.append(time.perf_counter() - t0)
        for kind, samples in ctx.samples.items():  # type: ignore[attr-defined]
            per_kind[kind].append(samples)
    return {"mode": "otel", "n": n, "reps": reps, "samples_ns": per_kind, "wall_s": walls}


def run(mode: str, n: int, reps: int) -> Dict[str, Any]:
    if mode == "kinds":
        return run_kinds(n, reps)
    if mode == "otel":
        return run_otel(n, reps)
    items = payloads(n)
    if mode == "ours":
        from handler_lib import defer

        samples: List[int] = []

        @defer
        def handler(event: Any, context: Any) -> None:
            samples.extend(timed(lambda p: defer.sqs(QUEUE_URL, p), event))

        def one(batch: List[Any], rid: str) -> List[int]:
            samples.clear()
            handler(batch, Ctx(rid))
            return list(samples)

        run_rep = one
    elif mode == "ack":
        from handler_lib import defer
        from handler_lib._dispatch import DISPATCHER

        def invokes(batch: List[Any], rid: str) -> List[int]:
            out = []
            for start in range(0, len(batch), 5):
                invoke = DISPATCHER.begin(f"{rid}-{start}")
                for p in batch[start:start + 5]:
                    defer.sqs(QUEUE_URL, p)
                t0 = time.perf_counter_ns()
                DISPATCHER.finish(invoke)
                out.append(time.perf_counter_ns() - t0)
            return out

        run_rep = invokes
    elif mode == "http":
        import http.client
        import socket

        conn = http.client.HTTPConnection("127.0.0.1", int(os.environ["BENCH_HTTP_PORT"]))
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        headers = {"Content-Type": "application/json"}

        def post(p: Any) -> None:
            conn.request("POST", "/item", json.dumps({"k": "sqs", "url": QUEUE_URL, "body": p}), headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 202:
                raise RuntimeError(f"peer answered {resp.status}")

        run_rep = lambda batch, rid: timed(post, batch)  # noqa: E731
    elif mode == "queue":
        import queue
        import threading

        q: "queue.Queue[Any]" = queue.Queue()

        def consume() -> None:
            while True:
                q.get()

        threading.Thread(target=consume, daemon=True).start()
        run_rep = lambda batch, rid: timed(lambda p: q.put((QUEUE_URL, p)), batch)  # noqa: E731
    elif mode == "boto3":
        import boto3

        sqs = boto3.client("sqs")
        run_rep = lambda batch, rid: timed(  # noqa: E731
            lambda p: sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=json.dumps(p)), batch)
    else:
        raise SystemExit(f"unknown mode {mode}")

    run_rep(payloads(WARMUP), "warmup")
    reps_ns, walls = [], []
    gc.collect()
    for r in range(reps):
        t0 = time.perf_counter()
        reps_ns.append(run_rep(items, f"rep-{r}"))
        walls.append(time.perf_counter() - t0)
    return {"mode": mode, "n": n, "reps": reps, "samples_ns": reps_ns, "wall_s": walls}


if __name__ == "__main__":
    mode, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(run(mode, n, reps)))
