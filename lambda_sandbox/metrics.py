"""Per-invoke figures: the REPORT and the `platform.runtimeDone` / `platform.report` records.

Durations follow Lambda's definitions: `runtimeDone.durationMs` runs from the invoke to
the runtime's next `next`; Duration runs to the last extension's `next`; the
post-runtime extension duration (span `extensionOverhead`) is the time between the two.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

from .config import SandboxConfig
from .events import PlatformReport, ReportMetrics, RuntimeDone, RuntimeDoneMetrics, Span, Tracing, iso_time
from .report import Report, billed_ms
from .state import Environment, Invocation

__all__ = ["build_report", "report_record", "runtime_done_record"]


def _ms(seconds: float) -> float:
    return round(max(0.0, seconds) * 1000, 3)


def _span(inv: Invocation, name: str, start: Optional[float], end: Optional[float]) -> Optional[Span]:
    if start is None or end is None:
        return None
    return Span(name, iso_time(inv.epoch(start)), _ms(end - start))


def _runtime_spans(inv: Invocation) -> Tuple[Span, ...]:
    spans = (
        _span(inv, "responseLatency", inv.started, inv.response_at),
        _span(inv, "responseDuration", inv.response_at, inv.response_at),
        _span(inv, "runtimeOverhead", inv.response_at, inv.runtime_done_at),
    )
    return tuple(s for s in spans if s is not None)


def runtime_done_record(inv: Invocation, failed_at: Optional[float] = None, status: Optional[str] = None,
                        error_type: Optional[str] = None) -> RuntimeDone:
    """Built when the runtime calls `next` after its response or error; or, with `status`
    timeout or failure, at `failed_at` when it never will (a timeout, a crash)."""
    end = failed_at if failed_at is not None else inv.runtime_done_at
    end = end if end is not None else inv.started
    status = status or ("error" if inv.error_type else "success")
    tracing = Tracing(inv.request.trace_id) if inv.request.trace_id else None
    return RuntimeDone(
        request_id=inv.request_id, status=status, error_type=error_type or inv.error_type,
        metrics=RuntimeDoneMetrics(_ms(end - inv.started), len(inv.response_body or b"")),
        spans=_runtime_spans(inv), tracing=tracing,
    )


def build_report(config: SandboxConfig, env: Environment, inv: Invocation, end: float, status: str,
                 error_type: Optional[str], init_ms: Optional[float], peak_kb: int, cpu_limit: str = "") -> Report:
    duration_ms = round(_ms(end - inv.started), 2)  # two decimals, as Lambda prints them
    post_ms = 0.0
    if env.extensions and inv.runtime_done_at is not None:
        post_ms = round(_ms(end - inv.runtime_done_at), 2)
    return Report(
        request_id=inv.request_id, duration_ms=duration_ms, billed_ms=billed_ms(duration_ms),
        memory_mb=config.memory_mb, max_memory_mb=math.ceil(peak_kb / 1024),
        post_runtime_extensions_ms=post_ms, init_ms=round(init_ms, 2) if init_ms is not None else None,
        status=status, error_type=error_type, cpu_limit=cpu_limit,
    )


def report_record(env: Environment, inv: Invocation, report: Report) -> PlatformReport:
    spans = list(_runtime_spans(inv))
    if inv.runtime_done_at is not None:
        spans.append(Span("extensionOverhead", iso_time(inv.epoch(inv.runtime_done_at)),
                          round(report.post_runtime_extensions_ms, 3)))
    tracing = Tracing(inv.request.trace_id) if inv.request.trace_id else None
    return PlatformReport(
        request_id=inv.request_id, status=report.status, error_type=report.error_type,
        metrics=ReportMetrics(report.duration_ms, report.billed_ms, report.memory_mb, report.max_memory_mb,
                              report.init_ms),
        spans=tuple(spans), tracing=tracing,
    )
