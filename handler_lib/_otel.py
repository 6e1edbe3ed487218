"""The W3C trace context (``traceparent``, ``tracestate``) of the OpenTelemetry span current at a
defer call, for SQS and SNS messages to carry to their consumers.

OpenTelemetry is never imported here. A span can be current only once the application (or
ADOT's instrumentation) has loaded ``opentelemetry.trace``; until then ``_items`` does not
load this module at all, and a call pays one ``sys.modules`` lookup. The headers are
written by hand from the span context (the W3C Trace Context format, version 00) rather than
through a propagator: the configured global propagator may be X-Ray's, and the consumer
expects W3C; formatting costs about a microsecond, and the last span's headers are kept, so
the calls of one span format once.
"""

from __future__ import annotations

import sys
from typing import Any, Optional, Tuple

Headers = Tuple[str, Optional[str]]  # traceparent, tracestate (None: empty)

# (the span context last formatted, its headers): one tuple, replaced whole, so a thread
# reading it never sees the context of one span with the headers of another. Holding the
# context keeps its id from being reused by another object. Only valid contexts are kept: a
# call outside any span does not evict the span the next call is made in.
_last: Tuple[Any, Optional[Headers]] = (None, None)
_get_span: Any = None  # opentelemetry.trace.get_current_span, once loaded


def current() -> Optional[Headers]:
    """The current span's ``traceparent`` and ``tracestate``, or None without a valid span."""
    global _last, _get_span
    get_span = _get_span
    if get_span is None:
        get_span = getattr(sys.modules.get("opentelemetry.trace"), "get_current_span", None)
        if get_span is None:  # unloaded, or still being imported
            return None
        _get_span = get_span
    try:
        context = get_span().get_span_context()
    except Exception:  # noqa: BLE001 - a broken tracer must not fail the defer call
        return None
    last_context, headers = _last
    if context is last_context:
        return headers
    headers = _format(context)
    if headers is not None:
        _last = (context, headers)
    return headers


def _format(context: Any) -> Optional[Headers]:
    try:
        if not context.is_valid:
            return None
        # %-formatting: a third faster here than the f-string (0.5 against 0.7 µs)
        parent = "00-%032x-%016x-%02x" % (context.trace_id, context.span_id, context.trace_flags & 0xFF)
        state = context.trace_state
        header = state.to_header() if state else ""
    except Exception:  # noqa: BLE001 - not the SpanContext of the API this was written for
        return None
    return parent, (header if header and header.isascii() and header.isprintable() else None)
