"""`make bench` / `python -m bench [--quick] [--only PART ...]`: run the benchmarks, write
bench/results.json and bench/timeline.png, print a table. See bench/README.md."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict

from .common import BENCH, machine_info

# key -> (target, "max" if lower is better else "min", unit)
TARGETS = {
    "enqueue_p50_us": (10, "max", "µs"),
    "enqueue_p99_us": (50, "max", "µs"),
    "speedup_vs_http_ipc": (20, "min", "x"),
    "speedup_vs_inline_publish": (None, "min", "x"),
    "response_p50_ms_deferred": (None, "max", "ms"),
    "response_p50_ms_inline": (None, "max", "ms"),
    "drain_api_calls_per_1000": (110, "max", ""),
    "drain_ratio_to_ideal": (1.3, "max", "x"),
    "drain_speedup_vs_sequential": (10, "min", "x"),
    "idle_invoke_post_runtime_ms": (1, "max", "ms"),
    "extension_register_ms": (50, "max", "ms"),
    "extension_peak_rss_mb": (40, "max", "MB"),
    "handler_lib_import_ms": (5, "max", "ms"),
    "asgi_response_p50_ms_mangum": (None, "max", "ms"),
    "asgi_response_p50_ms_defer": (None, "max", "ms"),
    "handler_lib_import_ms_after_runtime": (3, "max", "ms"),
    # part coldstart: 512 MB, then 1,769 MB, with memory-proportional CPU where the host allows it
    "init_extra_ms": (50, "max", "ms"),
    "first_drain_extra_ms": (100, "max", "ms"),
    "cold_response_ratio_to_inline": (0.8, "max", "x"),
    "warm_billed_ratio_to_inline": (0.75, "max", "x"),
    "billed_ratio_deferred_to_inline": (0.5, "max", "x"),
    "enqueue_otel_vs_no_span": (1.15, "max", "x"),
    "billed_ratio_deferred_to_inline_no_extension": (0.75, "max", "x"),
    "effects_and_task_post_runtime_ms": (None, "max", "ms"),
    "init_extra_ms_1769mb": (50, "max", "ms"),
    "first_drain_extra_ms_1769mb": (100, "max", "ms"),
    "cold_response_ratio_to_inline_1769mb": (0.8, "max", "x"),
    "warm_billed_ratio_to_inline_1769mb": (0.75, "max", "x"),
    "billed_ratio_deferred_to_inline_1769mb": (0.5, "max", "x"),
    "billed_ratio_deferred_to_inline_no_extension_1769mb": (0.75, "max", "x"),
    "effects_and_task_post_runtime_ms_1769mb": (None, "max", "ms"),
    # part fleet: 50 environments against a PutEvents quota; nothing dead-lettered or lost for throttling
    "fleet_dead_lettered": (0, "max", ""),
    "fleet_items_lost": (0, "max", ""),
}
EXTRA = ["claimcheck_ratio_to_one_put", "claimcheck_ideal_ratio", "drain_ratio_to_ideal_moto", "drain_speedup_vs_sequential_moto", "idle_invoke_post_runtime_ms_floor",
         "idle_invoke_post_runtime_ms_unwrapped", "idle_invoke_post_runtime_ms_unwrapped_telemetry",
         "extension_ready_ms", "speedup_vs_thread_queue",
         "handler_lib_import_ms_without_pyc", "handler_lib_import_ms_after_runtime_without_pyc",
         "handler_lib_import_and_wrap_ms_after_runtime",
         "response_p99_ms_deferred",
         "response_p99_ms_inline", "ack_roundtrip_p50_us", "ack_roundtrip_p99_us",
         "asgi_post_runtime_p50_ms_mangum", "asgi_post_runtime_p50_ms_defer", "lmi_items_per_api_call",
         "lmi_items_per_api_call_on_demand", "lmi_delivery_lag_p50_ms", "lmi_delivery_lag_p99_ms",
         "first_request_after_expiry_ms_without_hook", "first_request_after_expiry_ms_with_hook",
         "enqueue_otel_new_span_vs_no_span", "enqueue_otel_vs_ours",
         "transport_cpu_ms_per_call_botocore", "transport_cpu_ms_per_call_lean",
         "transport_cpu_ms_per_call_signer_only", "transport_cpu_ms_per_call_stdlib", "sdk_load_cpu_ms",
         "lean_load_cpu_ms", "signer_load_cpu_ms",
         "fleet_delivered_items_per_s", "fleet_quota_use", "fleet_throttled_requests", "fleet_retried_entries",
         "fleet_delivery_lag_p50_ms", "fleet_delivery_lag_p99_ms"]
PARTS = ("startup", "enqueue", "drain", "claimcheck", "sandbox", "asgi", "lmi", "coldstart", "hooks", "fifo",
         "transport", "fleet")


def verdicts(results: Dict[str, Any]) -> Dict[str, Any]:
    out = {}
    for key, (target, kind, unit) in TARGETS.items():
        if key not in results or target is None:
            continue
        value = results[key]
        ok = value <= target if kind == "max" else value >= target
        out[key] = {"value": value, "target": f"{'<=' if kind == 'max' else '>='} {target}{unit}", "met": ok, "verdict": "PASS" if ok else "MISS"}
    return out


def table(results: Dict[str, Any]) -> str:
    lines = [f"{'metric':52s} {'value':>12s}     {'target':>10s}  verdict"]
    for key, (target, kind, unit) in TARGETS.items():
        if key not in results:
            continue
        value = results[key]
        tgt = f"{'<=' if kind == 'max' else '>='} {target}" if target is not None else "-"
        met = "-" if target is None else ("PASS" if (value <= target if kind == "max" else value >= target) else "MISS")
        lines.append(f"{key:52s} {value:>12} {unit:3s} {tgt:>10s}  {met}")
    for key in EXTRA:
        if key in results:
            lines.append(f"{key:52s} {results[key]:>12}")
    limits = results.get("coldstart_detail", {}).get("cpu_limit")
    if limits is not None:
        lines.append(f"(coldstart: CPU limit in force at 512 MB: {', '.join(limits)}; at 1769 MB: "
                     f"{', '.join(results.get('coldstart_detail_1769mb', {}).get('cpu_limit', []))})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer items and repetitions (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    parser.add_argument("--out", default=str(BENCH / "results.json"))
    args = parser.parse_args()
    parts = args.only or PARTS

    from tests.support.moto_server import MotoServer, client

    started = time.monotonic()
    results: Dict[str, Any] = {"machine": machine_info(), "quick": args.quick}
    with MotoServer() as moto:
        if "startup" in parts:
            from . import startup

            results.update(startup.run(moto.endpoint_url, args.quick))
        if "enqueue" in parts:
            from . import enqueue

            queue_url = client("sqs", moto.endpoint_url).create_queue(QueueName="bench-enqueue")["QueueUrl"]
            results.update(enqueue.run(moto.endpoint_url, queue_url, args.quick))
        if "drain" in parts:
            from . import drain_bench

            results.update(drain_bench.run(moto.endpoint_url, args.quick))
        if "claimcheck" in parts:
            from . import claim_check_bench

            results.update(claim_check_bench.run(args.quick))
        if "sandbox" in parts:
            from . import sandbox_bench

            results.update(sandbox_bench.run(moto.endpoint_url, args.quick))
        if "asgi" in parts:
            from . import asgi_bench

            results.update(asgi_bench.run(args.quick))
        if "lmi" in parts:
            from . import lmi_bench

            results.update(lmi_bench.run(moto.endpoint_url, args.quick))
        if "coldstart" in parts:
            from . import coldstart

            results.update(coldstart.run(moto.endpoint_url, args.quick))
        if "transport" in parts:
            from . import transport_bench

            results.update(transport_bench.run(args.quick))
        if "hooks" in parts:
            from . import hooks_bench

            results.update(hooks_bench.run(moto.endpoint_url, args.quick))
        if "fifo" in parts:
            from . import fifo_bench

            results.update(fifo_bench.run(moto.endpoint_url, args.quick))
        if "fleet" in parts:
            from . import fleet_bench

            results.update(fleet_bench.run(moto.endpoint_url, args.quick))
    results["targets"] = verdicts(results)
    results["bench_seconds"] = round(time.monotonic() - started, 1)
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=2, sort_keys=False)
        fh.write("\n")
    m = results["machine"]
    print(f"\nlambda-defer bench  ({m['cpu_model']}, {m['cores']} cores, Python {m['python']}, {m['date']})")
    print(table(results))
    print(f"\nwrote {args.out} in {results['bench_seconds']} s" + ("  (--quick)" if args.quick else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
