"""`make demo`: the orders API in the local Lambda sandbox, deferred vs inline side effects.

Starts moto server, creates the topic/queues/bus, runs ``app.handler`` with the built layer
(``dist/layer``) in two sandboxes (the defer-runner extension, and ``DEFER_MODE=inline``),
sends the same burst of ``POST /orders`` to each, and prints per request the response
latency next to when each side effect landed. Writes a timeline to dist/demo-timeline.png.
Exit status 0 only if every deferred item landed. Run: ``.venv/bin/python -m examples.api_gateway.demo``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from . import demo_aws, demo_package
from .http_events import get_order, post_order, sample_order

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIR = Path(__file__).resolve().parent
TASK_DIR = REPO_ROOT / "dist" / "demo" / "api"  # SOURCE_DIR and its requirements, as deployed (main builds it)
KINDS = ("sns", "sqs", "event", "receipt", "insert", "update")
KIND_TITLES = {"sns": "SNS confirm", "sqs": "SQS fulfil", "event": "EventBridge", "receipt": "receipt task",
               "insert": "DB INSERT", "update": "DB MODIFY"}
CHANGE_KINDS = {"INSERT": "insert", "MODIFY": "update"}  # the orders table's change records


@dataclass
class Request:
    """One POST /orders: when it was sent, answered, and when each side effect landed (epoch s)."""

    n: int
    sent: float
    answered: float = 0.0
    status: int = 0
    order_id: str = ""
    extension_ms: Optional[float] = None
    landed: dict[str, float] = field(default_factory=dict)

    @property
    def latency_ms(self) -> float:
        return (self.answered - self.sent) * 1000

    def after_ms(self, kind: str) -> Optional[float]:
        at = self.landed.get(kind)
        return None if at is None else (at - self.sent) * 1000


@dataclass
class Run:
    mode: str  # "deferred" | "inline"
    requests: list[Request]
    first_invoke_ms: float

    def missing(self) -> list[str]:
        return [f"#{r.n} {k}" for r in self.requests for k in KINDS if k not in r.landed]


# -- running the sandbox ------------------------------------------------------------------
def start_sandbox(mode: str, env: dict[str, str], workdir: Path) -> Any:
    from lambda_sandbox import Sandbox

    env = {**env, "DATABASE_URL": f"sqlite:///{workdir / 'orders.db'}",
           "DEFER_SOCKET": str(workdir / "defer.sock"), "DEFER_JOURNAL_DIR": str(workdir / "journal"),
           "DEFER_MODE": "inline" if mode == "inline" else "auto", "DEFER_RUNNER_PYTHON": sys.executable,
           "POWERTOOLS_SERVICE_NAME": "orders", "POWERTOOLS_METRICS_NAMESPACE": "ShopDemo",
           "POWERTOOLS_LOG_LEVEL": "WARNING"}
    box = Sandbox(REPO_ROOT / "dist" / "layer", TASK_DIR, "app.handler", timeout_s=10, memory_mb=512,
                  env=env, echo=False)
    return box.start()


def run_burst(mode: str, env: dict[str, str], count: int, workdir: Path) -> tuple[Run, Any]:
    box = start_sandbox(mode, env, workdir)
    try:
        t0 = time.time()
        warm = box.invoke(get_order("warm-up"))  # first invoke: lazy DB set-up, first connections
        first_ms = (time.time() - t0) * 1000
        if warm.status != 200:
            raise RuntimeError(f"warm-up invoke failed: {warm.status} {warm.body[:300]!r}")
        requests = []
        for n in range(1, count + 1):
            req = Request(n, sent=time.time())
            result = box.invoke(post_order(sample_order(n)))
            req.answered = time.time()
            reply = result.json()
            req.status = int(reply.get("statusCode", 0))
            req.order_id = json.loads(reply.get("body") or "{}").get("id", "")
            if result.request_id:
                try:
                    req.extension_ms = box.wait_for_report(result.request_id, timeout=15).post_runtime_extensions_ms
                except TimeoutError:
                    pass
            requests.append(req)
        return Run(mode, requests, first_ms), box
    except BaseException:
        box.stop()
        raise


def run_invoices_worker(run: Run, res: demo_aws.Resources, endpoint: str, env: dict[str, str], workdir: Path,
                        timeout_s: float) -> tuple[int, int]:
    """The invoices function: handler_lib.worker.handler in a second sandbox, fed by the invoices
    queue as Lambda's event source mapping would; returns (calls it ran, invoices in S3)."""
    from lambda_sandbox import Sandbox
    from lambda_sandbox.sqs_source import SqsEventSource

    sqs, s3 = demo_aws.client("sqs", endpoint), demo_aws.client("s3", endpoint)
    expected = {f"invoices/{r.order_id}.txt" for r in run.requests if r.order_id}
    env = {**env, "DEFER_SOCKET": str(workdir / "worker.sock"), "DEFER_JOURNAL_DIR": str(workdir / "worker-journal"),
           "DATABASE_URL": f"sqlite:///{workdir / 'worker.db'}", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    ran = 0
    with Sandbox(REPO_ROOT / "dist" / "layer", TASK_DIR, "handler_lib.worker.handler", timeout_s=10,
                 memory_mb=512, env=env, echo=False) as worker:
        source = SqsEventSource(worker, sqs, res.invoices_queue_url)
        deadline = time.monotonic() + timeout_s
        stored: set[str] = set()
        while stored != expected and time.monotonic() < deadline:
            ran += sum(batch.done for batch in source.drain())
            listing = s3.list_objects_v2(Bucket=res.invoices_bucket, Prefix="invoices/").get("Contents", [])
            stored = {o["Key"] for o in listing} & expected
            if stored != expected:
                time.sleep(0.1)
    return ran, len(stored)


def collect(run: Run, res: demo_aws.Resources, endpoint: str, db_url: str, timeout_s: float) -> None:
    """Read every observing queue, the change records and the receipts table until all landed or the time is up."""
    from sqlalchemy import create_engine, text

    sqs = demo_aws.client("sqs", endpoint)
    engine = create_engine(db_url)
    by_id = {r.order_id: r for r in run.requests}
    sources = {"sns": res.confirmations_queue_url, "sqs": res.fulfilment_queue_url, "event": res.events_queue_url}
    deadline = time.monotonic() + timeout_s
    try:
        while run.missing() and time.monotonic() < deadline:
            for kind, url in sources.items():
                for msg in demo_aws.receive_all(sqs, url):
                    body = json.loads(msg["Body"])
                    oid = (body.get("detail") or body).get("order_id", "")
                    if oid in by_id:
                        by_id[oid].landed.setdefault(kind, int(msg["Attributes"]["SentTimestamp"]) / 1000)
            for msg in demo_aws.receive_all(sqs, res.changes_queue_url):
                record = json.loads(msg["Body"])["Records"][0]
                oid = record["dynamodb"]["Keys"]["id"]["S"]
                if oid in by_id and record["eventName"] in CHANGE_KINDS:
                    by_id[oid].landed.setdefault(CHANGE_KINDS[record["eventName"]],
                                                 int(msg["Attributes"]["SentTimestamp"]) / 1000)
            with engine.connect() as conn:
                for oid, written_us in conn.execute(text("SELECT order_id, written_at_us FROM receipts")):
                    if oid in by_id:
                        by_id[oid].landed.setdefault("receipt", written_us / 1e6)
            if run.missing():
                time.sleep(0.1)
    finally:
        engine.dispose()


# -- output -------------------------------------------------------------------------------
def _ms(value: Optional[float]) -> str:
    return "   —   " if value is None else f"{value:7.1f}"


def print_run(run: Run) -> None:
    title = {"deferred": "DEFERRED: @defer + the defer-runner extension (side effects after the response)",
             "inline": "INLINE: DEFER_MODE=inline (the same side effects before the response)"}[run.mode]
    print(f"\n{title}")
    print(f"  first invoke after init (GET, not in the table): {run.first_invoke_ms:.0f} ms")
    head = "  req  status  response |  " + "  ".join(f"{KIND_TITLES[k]:>12}" for k in KINDS) + "  | ext. after"
    print(head)
    print("  " + "-" * (len(head) - 2))
    for r in run.requests:
        cells = "  ".join(f"{_ms(r.after_ms(k)):>12}" for k in KINDS)
        print(f"  #{r.n:<3} {r.status:>5}  {_ms(r.latency_ms)}  |  {cells}  | {_ms(r.extension_ms)}")
    print("  (ms after the request was sent; 'ext. after' = extension time after the response, from REPORT)")


def print_summary(runs: list[Run]) -> None:
    print("\nSUMMARY")
    for run in runs:
        lat = [r.latency_ms for r in run.requests]
        lands = [r.after_ms(k) for r in run.requests for k in KINDS if r.after_ms(k) is not None]
        last = max(lands) if lands else float("nan")
        landed = sum(len(r.landed) for r in run.requests)
        print(f"  {run.mode:<8}  response p50 {statistics.median(lat):6.1f} ms  max {max(lat):6.1f} ms   "
              f"side effects landed {landed}/{len(run.requests) * len(KINDS)}, the last {last:.0f} ms after sending")
    if len(runs) == 2:
        d, i = (statistics.median(r.latency_ms for r in run.requests) for run in runs)
        print(f"  -> deferring answers {i - d:.1f} ms sooner per request (p50), {i / d:.1f}x faster")


def write_timeline(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {"sns": ("o", "tab:orange"), "sqs": ("s", "tab:green"), "event": ("^", "tab:purple"),
               "receipt": ("D", "tab:red"), "insert": ("P", "tab:brown"), "update": ("X", "tab:gray")}
    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 2.2 + 0.45 * sum(len(r.requests) for r in runs)),
                             sharex=True, squeeze=False)
    for ax, run in zip(axes[:, 0], runs):
        for row, req in enumerate(run.requests):
            ax.barh(row, req.latency_ms, height=0.5, color="tab:blue", alpha=0.8,
                    label="response" if row == 0 else None)
            for kind in KINDS:
                at = req.after_ms(kind)
                if at is not None:
                    marker, color = markers[kind]
                    ax.plot(at, row, marker=marker, color=color, linestyle="none", markersize=7,
                            label=KIND_TITLES[kind] if row == 0 else None)
        ax.set_yticks(range(len(run.requests)), [f"#{r.n}" for r in run.requests])
        ax.invert_yaxis()
        ax.set_title({"deferred": "deferred (@defer + defer-runner extension)",
                      "inline": "inline (DEFER_MODE=inline)"}[run.mode], loc="left")
        ax.grid(axis="x", alpha=0.3)
    # Linear up to 50 ms (warm requests), logarithmic beyond (the first, cold request).
    from matplotlib.ticker import FixedLocator, ScalarFormatter

    axes[-1, 0].set_xscale("symlog", linthresh=50, linscale=2)
    axes[-1, 0].xaxis.set_major_locator(FixedLocator([0, 10, 20, 30, 40, 50, 100, 200, 500, 1000, 2000]))
    axes[-1, 0].xaxis.set_major_formatter(ScalarFormatter())
    axes[-1, 0].set_xlim(left=0)
    axes[-1, 0].set_xlabel("ms after the request was sent (linear to 50 ms, log scale beyond)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=7, fontsize=9, bbox_to_anchor=(0.5, 0.965), frameon=False)
    fig.suptitle("POST /orders: response (bar) vs. when each side effect landed (markers)")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main ---------------------------------------------------------------------------------
def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.api_gateway.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--plot", default=str(REPO_ROOT / "dist" / "demo-timeline.png"))
    args = parser.parse_args(argv)
    if not (REPO_ROOT / "dist" / "layer" / "extensions" / "defer-runner").exists():
        print("dist/layer is not built: run `make layer` (or `make demo`)", file=sys.stderr)
        return 2
    demo_package.task_root(SOURCE_DIR, REPO_ROOT / "layer" / "requirements-example.txt", TASK_DIR)
    work = Path(tempfile.mkdtemp(prefix="defer-demo-"))
    moto = demo_aws.Moto()
    boxes: list[Any] = []
    runs: list[Run] = []
    invoices: list[tuple[str, int, int, int]] = []  # mode, calls the worker ran, invoices stored, orders
    print(f"lambda-defer demo: {args.requests} x POST /orders, deferred vs inline side effects")
    try:
        moto.start()
        print(f"  moto server        {moto.endpoint_url}")
        env = {**demo_aws.AWS_ENV, "AWS_ENDPOINT_URL": moto.endpoint_url}
        for mode in ("deferred", "inline"):
            res = demo_aws.create_resources(moto.endpoint_url, f"{mode}-{uuid.uuid4().hex[:6]}")
            workdir = work / mode
            workdir.mkdir()
            print(f"  sandbox ({mode:<8}) dist/layer + dist/demo/api (examples/api_gateway and its requirements), "
                  "app.handler")
            run, box = run_burst(mode, {**env, **res.function_env()}, args.requests, workdir)
            boxes.append(box)
            collect(run, res, moto.endpoint_url, f"sqlite:///{workdir / 'orders.db'}", timeout_s=20)
            ran, stored = run_invoices_worker(run, res, moto.endpoint_url, {**env, **res.function_env()}, workdir,
                                              timeout_s=20)
            invoices.append((mode, ran, stored, len(run.requests)))
            dead = demo_aws.receive_all(demo_aws.client("sqs", moto.endpoint_url), res.dlq_url)
            if dead:
                print(f"  ! {len(dead)} item(s) dead-lettered in {mode} mode")
            runs.append(run)
            box.stop()
        for run in runs:
            print_run(run)
        print_summary(runs)
        for mode, ran, stored, orders in invoices:
            print(f"  {mode:<8}  queued task archive_invoice: {orders} deferred to the invoices queue, {ran} run by "
                  f"the worker function (handler_lib.worker), {stored} invoices in S3")
        plot = Path(args.plot).resolve()
        try:
            write_timeline(runs, plot)
            print(f"\ntimeline written to {plot.relative_to(REPO_ROOT) if plot.is_relative_to(REPO_ROOT) else plot}")
        except ImportError:
            print("\n(no timeline: matplotlib is not installed; pip install matplotlib)")
    finally:
        for box in boxes:
            box.stop()
        moto.stop()
    bad = [f"{run.mode}: {', '.join(run.missing())}" for run in runs if run.missing()]
    bad += [f"{run.mode} #{r.n}: HTTP {r.status}" for run in runs for r in run.requests if r.status != 201]
    bad += [f"{mode}: {orders - stored} invoice(s) not in S3" for mode, _, stored, orders in invoices if stored != orders]
    if bad:
        print("\nFAILED, not landed or not created: " + "; ".join(bad))
        return 1
    print("every deferred item landed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
