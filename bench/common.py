"""Shared helpers: statistics, machine info, paths, the AWS test environment, child processes."""

from __future__ import annotations

import datetime as _dt
import functools
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LAYER = ROOT / "dist" / "layer"
PY = sys.executable

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@functools.cache
def bench_functions() -> Path:
    """bench/functions as deployed (dist/bench/functions): its code with its requirements.txt
    beside it. The sandbox, as Lambda, lets a function import nothing of this virtualenv."""
    from examples.api_gateway.demo_package import task_root

    return task_root(BENCH / "functions", BENCH / "functions" / "requirements.txt", ROOT / "dist" / "bench" / "functions")


@functools.cache
def example_api() -> Path:
    """examples/api_gateway as deployed (dist/demo/api, as make demo builds it)."""
    from examples.api_gateway.demo_package import task_root

    return task_root(ROOT / "examples" / "api_gateway", ROOT / "layer" / "requirements-example.txt",
                     ROOT / "dist" / "demo" / "api")

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_CONFIG_FILE": os.devnull,
}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def summary(values: Sequence[float], digits: int = 3) -> Dict[str, float]:
    return {"n": len(values), "p50": round(percentile(values, 50), digits),
            "p90": round(percentile(values, 90), digits), "p99": round(percentile(values, 99), digits),
            "max": round(max(values), digits), "mean": round(sum(values) / len(values), digits)}


def machine_info() -> Dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_mb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_mb = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {"cpu_model": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "platform": platform.platform(),
            "memory_mb": mem_mb, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """os.environ without anything that could reach real AWS, plus the dummy credentials."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("AWS_") or k.startswith("DEFER_"))}
    env.update(AWS_ENV)
    env.update(extra or {})
    return env


def stop_process(proc: Optional[subprocess.Popen], timeout: float = 5.0) -> None:
    """Stop a child we started (and its process group when it leads one)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM) if _leads_group(proc) else proc.terminate()
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL) if _leads_group(proc) else proc.kill()
        except ProcessLookupError:
            pass
        proc.wait(timeout)


def _leads_group(proc: subprocess.Popen) -> bool:
    try:
        return os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        return False


def rss_mb(pid: int) -> Dict[str, float]:
    """Current and peak resident set size of a process, from /proc (MB)."""
    out: Dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            key, value = line.split(":", 1)
            out[key] = round(int(value.split()[0]) / 1024, 2)
    return {"rss_mb": out.get("VmRSS", float("nan")), "peak_rss_mb": out.get("VmHWM", float("nan"))}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def serve_on_free_port(handler: Any) -> None:
    """Serve ``handler`` on a free loopback port, print the port, run until killed."""
    from http.server import ThreadingHTTPServer

    ThreadingHTTPServer.request_queue_size = 128  # socketserver's default 5 overflows: 1 s SYN retries
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()
