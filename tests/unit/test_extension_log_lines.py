"""The extension's JSON log lines: Powertools' keys and order, extras, tracebacks, and a line
for whatever a hostile item puts in a message (a lone surrogate, a circular extra)."""
from __future__ import annotations

import json
import logging

from extension.logs import JsonFormatter


def _line(message: str, *args: object, exc: bool = False, **extra: object) -> dict:
    record = logging.LogRecord("defer_runner.drain", logging.WARNING, __file__, 12, message, args, None,
                               func="drain")
    if exc:
        try:
            raise KeyError("gone")
        except KeyError:
            import sys

            record.exc_info = sys.exc_info()
    record.__dict__.update(extra)
    text = JsonFormatter().format(record)
    assert "\n" not in text
    text.encode("utf-8")  # writable to stdout as it is
    return json.loads(text)


def test_keys_in_powertools_order_then_extras():
    line = _line("item %s failed", "abc", item_id="abc", attempt=2, payload=b"\x00")
    assert list(line)[:6] == ["level", "location", "message", "timestamp", "service", "name"]
    assert line["level"] == "WARNING" and line["location"] == "drain:12" and line["message"] == "item abc failed"
    assert line["service"] == "defer-runner" and line["name"] == "defer_runner.drain"
    assert line["item_id"] == "abc" and line["attempt"] == 2 and line["payload"] == "b'\\x00'"
    assert line["timestamp"].endswith("+0000") and len(line["timestamp"]) == len("2026-12-05 11:40:41,193+0000")


def test_a_traceback_and_its_name():
    line = _line("boom", exc=True)
    assert line["exception_name"] == "KeyError" and line["exception"].startswith("Traceback")


def test_hostile_text_and_circular_extras_still_give_a_line():
    circular: dict = {}
    circular["self"] = circular
    line = _line("kind \udcff", kind="\ud800", loop=circular)
    assert line["message"] == "kind \udcff" and line["kind"] == "\ud800"
    assert line["loop"].startswith("{")


def test_the_drain_metrics_line_is_embedded_metric_format():
    import io

    from extension.metrics import COUNTS, DrainMetrics
    from handler_lib.engine.drain import DrainReport

    out = io.StringIO()
    report = DrainReport(received=3, delivered=2, given_up=1, duration_ms=4.5,
                         delivery_latency_ms=[float(i) for i in range(150)])
    DrainMetrics("fn", stream=out).publish(report)
    DrainMetrics("", stream=out).publish(DrainReport())
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    (directive,) = first["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "LambdaDefer" and directive["Dimensions"] == [["function_name", "service"]]
    names = [m["Name"] for m in directive["Metrics"]]
    assert names == ["enqueued", *COUNTS, "drain_duration", "enqueue_to_delivery"]
    assert all(name in first for name in names)  # every metric named has its values
    assert first["function_name"] == "fn" and first["service"] == "defer-runner"
    assert first["enqueued"] == [3.0] and first["delivered"] == [2.0] and first["given_up"] == [1.0]
    assert first["enqueue_to_delivery"] == [float(i) for i in range(100)]  # EMF's 100 values a line
    assert isinstance(first["_aws"]["Timestamp"], int)
    assert second["function_name"] == "unknown" and "enqueue_to_delivery" not in second
