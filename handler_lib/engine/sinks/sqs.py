"""SQS SendMessageBatch adapter."""

from __future__ import annotations

from typing import Any, Dict, List

from ... import wire

from .base import fifo_fields, message_attributes, trace_attributes, trace_skipped
from .base import message_size as message_bytes
from .claim_check import PayloadSink

#: SendMessage: a message and its attributes, at most 1 MiB.
MAX_MESSAGE_BYTES = 1_048_576


class SqsSink(PayloadSink):
    service = "sqs"
    max_batch_bytes = 1_048_576
    payload_field = "body"

    def entry(self, item: wire.SqsItem, entry_id: str) -> Dict[str, Any]:
        entry: Dict[str, Any] = {"Id": entry_id, "MessageBody": item.body}
        entry["MessageAttributes"] = message_attributes(item)
        if item.traceparent is not None:
            entry["MessageAttributes"].update(trace_attributes(item, len(item.body.encode()), MAX_MESSAGE_BYTES))
        if item.delay_seconds is not None:
            entry["DelaySeconds"] = item.delay_seconds
        entry.update(fifo_fields(item))
        if item.trace:  # a system attribute: not one of the 10, not counted in the size
            entry["MessageSystemAttributes"] = {"AWSTraceHeader": {"DataType": "String", "StringValue": item.trace}}
        return entry

    def message_size(self, item: wire.SqsItem) -> int:
        return message_bytes(item, len(item.body.encode()), MAX_MESSAGE_BYTES)

    def trace_skipped(self, item: wire.SqsItem) -> bool:
        return item.traceparent is not None and trace_skipped(item, len(item.body.encode()), MAX_MESSAGE_BYTES)

    def call(self, target: str, entries: List[Dict[str, Any]]) -> Dict[str, Any]:
        response: Dict[str, Any] = self.client.send_message_batch(QueueUrl=target, Entries=entries)
        return response
