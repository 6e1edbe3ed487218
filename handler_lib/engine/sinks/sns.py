"""SNS PublishBatch adapter."""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional, Sequence

from ... import wire

from ..outcome import Outcome
from .base import fifo_fields, message_attributes, trace_attributes, trace_skipped
from .base import message_size as message_bytes
from .claim_check import ClaimCheck, PayloadSink

TRACE_HEADER = "X-Amzn-Trace-Id"
#: Publish: a message and its attributes, at most 256 KiB (a topic's default MaximumMessageSize).
MAX_MESSAGE_BYTES = 262_144


class SnsSink(PayloadSink):
    """SNS has no per-message trace field: X-Ray takes the trace from the publish request's
    ``X-Amzn-Trace-Id`` header. A batch whose items share one trace (the usual case: one
    invoke's items) is sent with it; a batch that mixes invokes' traces is sent without. The
    lean client takes the header as an argument; botocore's gets it from a ``before-sign``
    hook (neither signs it, as botocore never does)."""

    service = "sns"
    max_batch_bytes = 262_144
    payload_field = "message"

    def __init__(self, client_factory: Any, claim_check: Optional[ClaimCheck] = None) -> None:
        super().__init__(client_factory, claim_check)
        self._batch = threading.local()  # the trace of the batch this thread is sending
        self._hooked = False

    def entry(self, item: wire.SnsItem, entry_id: str) -> Dict[str, Any]:
        entry: Dict[str, Any] = {"Id": entry_id, "Message": item.message}
        if item.subject is not None:
            entry["Subject"] = item.subject
        entry["MessageAttributes"] = message_attributes(item)
        if item.traceparent is not None:
            entry["MessageAttributes"].update(trace_attributes(item, len(item.message.encode()), MAX_MESSAGE_BYTES))
        entry.update(fifo_fields(item))
        return entry

    def message_size(self, item: wire.SnsItem) -> int:
        return message_bytes(item, len(item.message.encode()), MAX_MESSAGE_BYTES)

    def trace_skipped(self, item: wire.SnsItem) -> bool:
        return item.traceparent is not None and trace_skipped(item, len(item.message.encode()), MAX_MESSAGE_BYTES)

    def send(self, target: str, items: Sequence[wire.WorkItem]) -> List[Outcome]:
        traces = {item.trace for item in items}  # type: ignore[union-attr]
        self._batch.trace = traces.pop() if len(traces) == 1 else None
        try:
            return super().send(target, items)
        finally:
            self._batch.trace = None

    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        client = self.client
        if getattr(client, "accepts_extra_headers", False):  # the lean client: the header, plainly
            trace: Optional[str] = getattr(self._batch, "trace", None)
            lean: Dict[str, Any] = client.publish_batch(TopicArn=target, PublishBatchRequestEntries=entries,
                                                        extra_headers={TRACE_HEADER: trace} if trace else None)
            return lean
        if not self._hooked:  # botocore: only a hook can add a header to its request
            with self._lock:
                if not self._hooked:
                    client.meta.events.register("before-sign.sns.PublishBatch", self._add_trace)
                    self._hooked = True
        response: Dict[str, Any] = client.publish_batch(TopicArn=target, PublishBatchRequestEntries=entries)
        return response

    def _add_trace(self, request: Any, **_: Any) -> None:
        trace: Optional[str] = getattr(self._batch, "trace", None)
        if trace:
            request.headers[TRACE_HEADER] = trace
