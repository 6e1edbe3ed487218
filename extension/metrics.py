"""Per-drain metrics in CloudWatch Embedded Metric Format, through Powertools Metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handler_lib.engine.drain import DrainReport

NAMESPACE = "LambdaDefer"


class DrainMetrics:
    def __init__(self, function_name: str) -> None:
        self._metrics: Any = None  # Powertools loads at the first drain's end, after a response
        self._function_name = function_name

    def publish(self, report: DrainReport) -> None:
        from aws_lambda_powertools import Metrics
        from aws_lambda_powertools.metrics import MetricUnit

        if self._metrics is None:
            self._metrics = Metrics(namespace=NAMESPACE, service="defer-runner")
        m = self._metrics
        m.add_dimension(name="function_name", value=self._function_name or "unknown")
        m.add_metric(name="enqueued", unit=MetricUnit.Count, value=report.received)
        for name in ("delivered", "retried", "carried_over", "dead_lettered", "given_up", "api_calls", "tasks_hung",
                     "after_run", "after_failed", "trace_context_skipped"):
            m.add_metric(name=name, unit=MetricUnit.Count, value=getattr(report, name))
        m.add_metric(name="drain_duration", unit=MetricUnit.Milliseconds, value=report.duration_ms)
        for latency in report.delivery_latency_ms[:100]:  # EMF allows 100 values per metric
            m.add_metric(name="enqueue_to_delivery", unit=MetricUnit.Milliseconds, value=latency)
        m.flush_metrics(raise_on_empty_metrics=False)
